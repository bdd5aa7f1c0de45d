"""Smoke runs of both arith-heads experiments (tiny random decoder, every stage)."""

import json

import numpy as np

from jaxlab.core.metrics import all_finite as _finite
from experiments.arith_heads import smollm2, smollm2_quick


def test_smoke_runs_and_resumes(tmp_path):
  result = smollm2.run(smollm2.get_config(smoke=True), tmp_path)
  assert _finite(result["patching"]) and _finite(result["knockout"])
  assert set(result["tuning"]) >= {"base", "heads"}
  assert (tmp_path / "patching_heads.png").exists()
  scores = json.loads((tmp_path / "head_scores.json").read_text())
  assert np.asarray(scores["head_scores"]).shape == (3, 4)
  assert "repatch" in result["tuning"]["heads"]
  # The pinpoint arm trains exactly the q/o slices of k heads (GQA policy).
  assert result["tuning"]["heads"]["trainable"] == 2 * (32 * 8 * 2)
  assert "| heads |" in smollm2.report(result)
  # A rerun resumes from the cached stages and reproduces the numbers.
  again = smollm2_quick.run(smollm2_quick.get_config(smoke=True), tmp_path)
  assert again["patching"] == result["patching"] and again["knockout"] == result["knockout"]
