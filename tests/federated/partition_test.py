"""Partitioners: hand-checked Dirichlet case, min_size, coverage, errors."""

import numpy as np
import pytest

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.federated import partition
from jaxlab.federated.sampling import sample_clients

LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 1, 2, 0])


def test_hetero_hand_checked():
  # Traced by hand (seed 0, K=3, alpha=0.5, N=16): class 0 p=(.206,.728,.067) on
  # shuffled [15,2,1,3,0,12] cuts at [1,5]; class 1 p=(.006,0,.993) all to client 2;
  # class 2 p=(.86,.057,.083) but client 2 already holds 6 >= N/K, so p becomes
  # (.938,.062,0) and cuts at [4,4]; sizes 5,4,7 >= min_require=2; then shuffles.
  parts = partition.hetero(LABELS, 3, 0.5, seed=0, min_require=2)
  assert [p.tolist() for p in parts] == [[8, 14, 11, 15, 9], [1, 0, 2, 3],
                                         [6, 4, 7, 13, 5, 10, 12]]


def _reference(labels, k, alpha, seed, min_require):
  """The FedML/NIID-Bench loop on the global NumPy stream (as the repos run it)."""
  np.random.seed(seed)
  n, min_size = len(labels), 0
  while min_size < min_require:
    batch = [[] for _ in range(k)]
    for c in range(labels.max() + 1):
      idx = np.where(labels == c)[0]
      np.random.shuffle(idx)
      p = np.random.dirichlet(np.repeat(alpha, k))
      p = np.array([q * (len(b) < n / k) for q, b in zip(p, batch)])
      p = p / p.sum()
      cut = (np.cumsum(p) * len(idx)).astype(int)[:-1]
      batch = [b + s.tolist() for b, s in zip(batch, np.split(idx, cut))]
      min_size = min(len(b) for b in batch)
  for b in batch:
    np.random.shuffle(b)
  return batch


@pytest.mark.parametrize("alpha,seed", [(0.1, 0), (0.5, 3), (0.05, 7)])
def test_hetero_matches_reference_stream_and_min_size(alpha, seed):
  labels = np.random.RandomState(1).randint(0, 10, 2000)
  parts = partition.hetero(labels, 20, alpha, seed=seed)
  ref = _reference(labels, 20, alpha, seed, 10)
  assert [p.tolist() for p in parts] == ref
  assert min(len(p) for p in parts) >= 10
  allidx = np.sort(np.concatenate(parts))
  np.testing.assert_array_equal(allidx, np.arange(2000))
  assert partition.histogram(labels, parts).sum() == 2000


def test_other_partitioners_cover_everything():
  labels = np.random.RandomState(0).randint(0, 10, 1000)
  for parts in (partition.iid(labels, 7), partition.label_k(labels, 10, 2),
                partition.shards(labels, 10, 20)):
    allidx = np.concatenate(parts)
    assert len(np.unique(allidx)) == len(allidx) and len(allidx) == 1000
  h = partition.histogram(labels, partition.label_k(labels, 10, 2))
  assert ((h > 0).sum(1) <= 2).all()
  h = partition.histogram(labels, partition.shards(labels, 10, 20))
  assert ((h > 0).sum(1) <= 4).all()


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ConfigError, match="alpha"):
    partition.hetero(LABELS, 3, 0.0)
  with pytest.raises(ConfigError, match="exceeds"):
    partition.hetero(LABELS, 17, 0.5)
  with pytest.raises(ConfigError, match="min_require"):
    partition.hetero(LABELS, 4, 0.5, min_require=5)
  with pytest.raises(DataError, match="tries"):
    partition.hetero(LABELS, 8, 0.01, min_require=2, max_tries=3)
  with pytest.raises(ConfigError, match="per round"):
    sample_clients(0, 10, 11)


def test_sampling_matches_reference_and_is_method_independent():
  for r in range(20):
    np.random.seed(r)
    ref = np.random.choice(range(100), 10, replace=False)
    np.testing.assert_array_equal(sample_clients(r, 100, 10), ref)
  np.testing.assert_array_equal(sample_clients(5, 10, 10), np.arange(10))


def test_partition_plot(tmp_path):
  parts = partition.hetero(np.random.RandomState(0).randint(0, 10, 500), 10, 0.3)
  partition.plot(tmp_path / "p.png", np.random.RandomState(0).randint(0, 10, 500), parts)
  assert (tmp_path / "p.png").stat().st_size > 1000
