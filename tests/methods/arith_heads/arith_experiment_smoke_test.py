"""Smoke runs of both arith-heads experiments (tiny random decoder, every stage)."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from jaxlab.core.errors import ConfigError

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
  # The two-stage seed protocol on the cached stages: seed 0 of both lrs, then seed 1 at the
  # lr seed 0 picked; the summary's seed statistics cover exactly the chosen lr's two seeds.
  best_dir = tmp_path / "best"
  (best_dir / "stages").mkdir(parents=True)
  for f in (tmp_path / "stages").glob("*.json"):
    if f.name != "tuning.json":
      shutil.copy(f, best_dir / "stages" / f.name)
  cfg = dataclasses.replace(smollm2.get_config(smoke=True), tune_seeds=2, tune_arms=("heads",),
                            tune_seed_protocol="best", lr_heads=(1e-2, 3e-2))
  heads = smollm2.run(cfg, best_dir)["tuning"]["heads"]
  assert sorted(heads["per_lr"]) == ["0.01", "0.03"]
  assert {k: v["n_seeds"] for k, v in heads["per_lr"].items()} == {
    f"{heads['best_lr']:g}": 2, f"{({1e-2, 3e-2} - {heads['best_lr']}).pop():g}": 1}
  assert heads["n_seeds"] == 2 and len(heads["target_acc_seeds"]) == 2
  assert sorted(p.name for p in (best_dir / "arms" / "heads" / "seeds").iterdir())[0][:2] == "0-"


def test_bad_tuning_settings_are_refused_before_any_work(tmp_path):
  base = smollm2.get_config(smoke=True)
  for bad in (dict(tune_arms=("heads", "ful")), dict(tune_seed_protocol="fast"),
              dict(tune_target="words"), dict(tune_dtype="float16")):
    with pytest.raises(ConfigError, match=next(iter(bad))):
      smollm2.run(dataclasses.replace(base, **bad), tmp_path)
  assert not any(tmp_path.iterdir())
