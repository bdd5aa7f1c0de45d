"""Per-arm summaries over seeds: best lr on validation, seed means and Student-t intervals.

The expected numbers are computed here by hand from the synthetic rows, not by the code under
test.
"""

import math

import numpy as np
import pytest

from jaxlab.methods.arith_heads import tune as arith_tune
from jaxlab.methods.spt import pipeline as spt
from jaxlab.tuning import evaluate, loop

T975_DF2 = 4.302652729911275  # Student-t 97.5% quantile, 2 degrees of freedom


def test_seed_ci_is_a_student_t_interval():
  m, lo, hi = evaluate.seed_ci([1.0, 2.0, 3.0])
  half = T975_DF2 * 1.0 / math.sqrt(3)  # sd 1
  assert (m, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-9)
  one = evaluate.seed_ci([0.4])
  assert one[0] == 0.4 and math.isnan(one[1]) and math.isnan(one[2])


def _spt_rows(rng, n_q):
  """2 lrs x 3 seeds; lr 1e-3 is better on validation."""
  lanes, rows = [], []
  for lr, shift in ((1e-3, 0.3), (1e-2, 0.0)):
    for s in range(3):
      p = np.clip(rng.uniform(0, 0.5, n_q) + shift, 0, 1)
      lanes.append(loop.Lane(lr, s))
      rows.append({"p_correct": p.tolist(), "insist_ce": rng.uniform(0, 2, n_q).tolist(),
                   "val_p_correct": float(p[::2].mean()), "kl": 0.01 * (s + 1)})
  return lanes, rows


def test_spt_summary_over_seeds():
  rng = np.random.default_rng(0)
  n_q = 20
  ev = {"val": np.arange(0, n_q, 2), "test": np.arange(1, n_q, 2)}
  lanes, rows = _spt_rows(rng, n_q)
  out = spt._summarize_lanes(lanes, rows, ev)
  assert out["best_lr"] == 1e-3 and out["n_seeds"] == 3
  seeds = [np.mean(r["p_correct"][1::2]) for r in rows[:3]]
  assert out["p_correct_seeds"] == pytest.approx(seeds)
  sd = np.std(seeds, ddof=1)
  m = np.mean(seeds)
  assert out["p_correct_seed_ci"] == pytest.approx(
    (m, m - T975_DF2 * sd / math.sqrt(3), m + T975_DF2 * sd / math.sqrt(3)))
  # the per-question interval's mean is the same number (equal-size test halves)
  assert out["p_correct"][0] == pytest.approx(m)
  assert out["per_lr"]["0.01"]["test_p_correct"] == pytest.approx(
    np.mean([np.mean(r["p_correct"][1::2]) for r in rows[3:]]))
  # KL over 3 seeds (0.01, 0.02, 0.03: sd 0.01) gets a Student-t interval, not 1.96 SE
  half = T975_DF2 * 0.01 / math.sqrt(3)
  assert out["kl"] == pytest.approx((0.02, 0.02 - half, 0.02 + half))


def test_arith_summary_over_seeds():
  rng = np.random.default_rng(1)
  lanes, rows = [], []
  for lr, bonus in ((1e-3, 0.0), (1e-2, 0.2)):
    for s in range(3):
      hits = (rng.uniform(size=10) < 0.3 + bonus).astype(int)
      lanes.append(loop.Lane(lr, s))
      rows.append({"val_acc": 0.1 + bonus + 0.01 * s, "target_acc": float(hits.mean()),
                   "target_hits": hits.tolist(), "kl": 0.02 * (s + 1), "fewshot_acc": 0.5,
                   "probe_acc": None, "nll_new": 1.0})
  out = arith_tune._best(loop.Arm(name="heads"), lanes, rows)
  assert out["best_lr"] == 1e-2 and out["n_seeds"] == 3
  seeds = [rows[i]["target_acc"] for i in (3, 4, 5)]
  assert out["target_acc_seeds"] == pytest.approx(seeds)
  m, sd = np.mean(seeds), np.std(seeds, ddof=1)
  assert out["target_acc_seed_ci"] == pytest.approx(
    (m, m - T975_DF2 * sd / math.sqrt(3), m + T975_DF2 * sd / math.sqrt(3)))
  assert out["target_acc"][0] == pytest.approx(m)
  half = T975_DF2 * 0.02 / math.sqrt(3)  # KL 0.02, 0.04, 0.06: sd 0.02
  assert out["kl"] == pytest.approx((0.04, 0.04 - half, 0.04 + half))
