"""Protocol rules against hand-written CoOp logic."""

import math

import numpy as np
import pytest

from jaxlab.core import errors
from jaxlab.methods.enla import protocols


def _coop_split(labels):
  """CoOp's subsample_classes("base"/"new"): sorted unique labels, m = ceil(n / 2)."""
  labels = sorted({int(x) for x in labels})
  m = math.ceil(len(labels) / 2)
  return labels[:m], labels[m:]


@pytest.mark.parametrize("n", [2, 7, 10, 37, 100])
def test_base_novel_split_is_coops(n):
  labels = np.random.default_rng(n).permutation(np.repeat(np.arange(n), 3))
  base, novel = protocols.base_novel_split(labels)
  ref_b, ref_n = _coop_split(labels)
  assert base.tolist() == ref_b and novel.tolist() == ref_n
  rows, rel = protocols.select_classes(labels, novel)
  assert set(rel.tolist()) == set(range(len(novel)))
  np.testing.assert_array_equal(novel[rel], labels[rows])


def test_harmonic_mean_and_average_row():
  assert protocols.harmonic_mean(69.34, 74.22) == pytest.approx(71.70, abs=0.01)
  assert protocols.harmonic_mean(84.26, 76.10) == pytest.approx(79.97, abs=0.01)
  assert protocols.harmonic_mean(0, 0) == 0
  row = protocols.average_row([90.0, 50.0], [10.0, 70.0])
  assert row["hm"] == pytest.approx(2 * 70 * 40 / 110)
  mean_of_hms = np.mean([protocols.harmonic_mean(90, 10), protocols.harmonic_mean(50, 70)])
  assert abs(row["hm"] - mean_of_hms) > 1


def test_few_shot_sampling():
  labels = np.repeat(np.arange(5), 20)
  a = protocols.few_shot_indices(labels, 4, seed=1)
  np.testing.assert_array_equal(a, protocols.few_shot_indices(labels, 4, seed=1))
  assert not np.array_equal(a, protocols.few_shot_indices(labels, 4, seed=2))
  assert np.bincount(labels[a]).tolist() == [4] * 5
  assert protocols.val_shots(16) == 4 and protocols.val_shots(2) == 2
  with pytest.raises(errors.DataError):
    protocols.few_shot_indices(labels, 21, seed=0)
