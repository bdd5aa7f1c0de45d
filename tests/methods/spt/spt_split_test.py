"""The validation / test halves of the SPT proxies are balanced by answer letter and source."""

import collections

import numpy as np

from jaxlab.methods.spt import pipeline


def _counts(qs, idx):
  return collections.Counter((qs[i].source, qs[i].answer) for i in idx)


def test_halves_balance_letters_and_sources_on_the_study_questions():
  sets = pipeline.question_sets(pipeline.StudyConfig(n_eval=150))
  qs = sets["eval_arith"] + sets["eval_general"]
  h = pipeline.split_halves(qs, seed=0)
  val, test = h["val"], h["test"]
  assert sorted(np.concatenate([val, test]).tolist()) == list(range(len(qs)))  # a partition
  assert abs(len(val) - len(test)) <= 1
  cv, ct = _counts(qs, val), _counts(qs, test)
  for key in set(cv) | set(ct):   # every (source, letter) stratum split to within one item
    assert abs(cv[key] - ct[key]) <= 1, (key, cv[key], ct[key])
  # The questions rotate the letter with the index: an even/odd split is far from balanced.
  odd = _counts(qs, range(1, len(qs), 2))
  even = _counts(qs, range(0, len(qs), 2))
  assert max(abs(odd[k] - even[k]) for k in set(odd) | set(even)) > 10


def test_halves_are_deterministic_and_seeded():
  qs = pipeline.question_sets(pipeline.StudyConfig(n_eval=40))["eval_arith"]
  a, b = pipeline.split_halves(qs, seed=3), pipeline.split_halves(qs, seed=3)
  np.testing.assert_array_equal(a["val"], b["val"])
  assert not np.array_equal(a["val"], pipeline.split_halves(qs, seed=4)["val"])
