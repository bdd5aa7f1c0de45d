"""The SCAFFOLD lr-sweep experiment: smoke run and its divergence bookkeeping."""

import json
import math

import numpy as np
import pytest

from experiments.federated import scaffold_lr


def test_summarize_finds_the_first_non_finite_round():
  cfg = scaffold_lr.Config(learning_rates=(0.01, 0.05), rounds=3)
  nan = float("nan")
  hist = [{"round": 1, "loss": [2.0, 2.0], "c_norm": [0.1, 0.2], "c_k_max": [1.0, 2.0]},
          {"round": 2, "loss": [1.5, float("inf")], "c_norm": [0.2, 9.0], "c_k_max": [1.0, 50.0],
           "accuracy": [0.6, 0.3]},
          {"round": 3, "loss": [1.2, nan], "c_norm": [0.3, nan], "c_k_max": [1.1, nan],
           "accuracy": [0.7, nan]}]
  out = scaffold_lr.summarize(cfg, hist)
  assert out["per_lr"]["0.01"]["diverged_round"] is None
  assert out["per_lr"]["0.05"]["diverged_round"] == 2
  assert out["per_lr"]["0.05"]["best_accuracy"] == 0.3
  assert out["per_lr"]["0.05"]["c_k_max_peak"] == 50.0
  assert out["per_lr"]["0.01"]["final_accuracy"] == 0.7
  assert out["stable_lrs"] == ["0.01"]
  assert "| 0.05 | 2 |" in scaffold_lr.report(out)


def test_smoke_run(tmp_path):
  pytest.importorskip("datasets")
  try:
    from jaxlab.data import load
    load("mnist")
  except Exception as e:  # noqa: BLE001 - asset not installed
    pytest.skip(f"dataset asset missing: {e}")
  cfg = scaffold_lr.get_config(smoke=True)
  result = scaffold_lr.run(cfg, tmp_path)
  assert set(result["per_lr"]) == {f"{lr:g}" for lr in cfg.learning_rates}
  for v in result["per_lr"].values():
    assert math.isfinite(v["final_accuracy"]) and v["c_norm_final"] > 0
  rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
  assert len(rows) == cfg.rounds
  # c = c_k = 0 before the first round, so the first round has no correction;
  # afterwards ||c|| > 0 and every sampled client holds a non-zero c_k.
  np.testing.assert_array_equal(rows[0]["corr_mean"], 0.0)
  assert min(rows[0]["c_norm"]) > 0 and min(rows[0]["c_k_mean"]) > 0
  assert (tmp_path / "scaffold_lr.png").stat().st_size > 1000
