"""Smoke runs of the SPT experiments (tiny random decoder + SmolLM2's tokenizer)."""

import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest

from jaxlab.core.metrics import all_finite as _finite
from jaxlab.core import errors
from jaxlab.methods.spt import pipeline
from jaxlab.models.loaders import gguf_file

pytest.importorskip("gguf")


def _asset():
  try:
    gguf_file.smollm2_path()
  except errors.AssetMissingError as e:
    pytest.skip(f"SmolLM2 asset absent (tokenizer source): {e}")


def _qs(cfg):
  sets = pipeline.question_sets(cfg)
  return sets["eval_arith"] + sets["eval_general"]


def test_quick_smoke(tmp_path, monkeypatch):
  _asset()
  from experiments.spt import smollm2_quick as exp
  cfg = exp.get_config(smoke=True)
  assert cfg.model == "tiny-random"
  with pytest.warns(UserWarning, match="gen_new"):   # smoke budgets (4, 2) < the target
    result = exp.run(cfg, tmp_path)
  assert _finite({k: v for k, v in result.items() if k != "knockout_apology_random_mean"})
  heads = json.loads((tmp_path / "selected_heads.json").read_text())["heads"]
  assert len(heads) == cfg.k and heads == result["selected_heads"]
  assert (tmp_path / "scores_sorry_glad.npy").exists()
  assert result["table"]["spt"]["trainable"] == cfg.k * 2 * 64 * 16
  assert set(result["table"]) == {"base", "spt", "random"}
  assert (tmp_path / "verdict.png").exists()
  ev = json.loads((tmp_path / "stages" / "arm_spt.json").read_text())["eval"]
  assert len(ev["replies"]) == ev["n"] and [r[1] for r in ev["replies"][:3]] == ev["examples"]
  # decoded halves (the proxies' val/test split): weighted by their questions, the whole
  halves = pipeline.split_halves(_qs(cfg), seed=cfg.seed)
  w = [ev[f"n_correct_first_{h}"] for h in ("val", "test")]
  if ev["n_correct_first"] == ev["n"]:     # forced-correct first answers
    assert w == [len(halves["val"]), len(halves["test"])]
  for k in ("truthfulness", "confidence"):
    assert sum(wi * ev[f"{k}_{h}"] for wi, h in zip(w, ("val", "test"))) == pytest.approx(
      ev["n_correct_first"] * ev[k])
  assert "| SPT (top-k heads) |" in exp.report(result)
  # Resume: a second run reads every stage back and gives the same summary.
  assert exp.run(cfg, tmp_path) == result
  # The two-stage seed protocol on the cached stages (no arm stage copied): seed 0 of both
  # lrs, then seed 1 at the lr seed 0 picked on validation.
  best_dir = tmp_path / "best"
  (best_dir / "stages").mkdir(parents=True)
  for f in (tmp_path / "stages").glob("*.json"):
    if not f.name.startswith("arm_"):
      shutil.copy(f, best_dir / "stages" / f.name)
  for f in tmp_path.glob("scores_*.npy"):
    shutil.copy(f, best_dir / f.name)
  # (and the bf16 mixed-precision step end to end through the study)
  two = dataclasses.replace(cfg, arms=("spt",), n_seeds=2, seed_protocol="best",
                            lr_spt=(1e-2, 3e-3), gen_seeds=2, tune_dtype="bfloat16")
  decoded = []   # a checksum of the params each decoding call gets
  dtypes = set()  # bf16 tuning still hands fp32 weights to the evaluation
  real = pipeline.behaviour

  def behaviour(model, params, *a, **kw):
    decoded.append(float(sum(np.sum(np.asarray(x, np.float64))
                             for x in jax.tree.leaves(params))))
    dtypes.update(str(x.dtype) for x in jax.tree.leaves(params))
    return real(model, params, *a, **kw)

  monkeypatch.setattr(pipeline, "behaviour", behaviour)
  got = exp.run(two, best_dir)
  arm = json.loads((best_dir / "stages" / "arm_spt.json").read_text())
  assert {k: v["n_seeds"] for k, v in arm["per_lr"].items()} == {
    f"{arm['best_lr']:g}": 2, f"{({1e-2, 3e-3} - {arm['best_lr']}).pop():g}": 1}
  assert arm["n_seeds"] == 2 and len(arm["p_correct_seeds"]) == 2
  assert got["table"]["spt"]["p_correct_seed_ci"][0] == pytest.approx(
    sum(arm["p_correct_seeds"]) / 2)
  # gen_seeds=2: seeds 0 and 1 of the chosen lr are decoded (the base stage is cached)
  assert len(decoded) == 2 and decoded[0] != decoded[1] and dtypes == {"float32"}
  assert arm["truthfulness_seeds"][0] == arm["eval"]["truthfulness"]
  assert len(arm["confidence_keep_seeds"]) == 2
  assert arm["truthfulness_seed_ci"][0] == pytest.approx(sum(arm["truthfulness_seeds"]) / 2)
  assert got["table"]["spt"]["truthfulness_seeds"] == arm["truthfulness_seeds"]
  with pytest.raises(errors.ConfigError, match="gen_seeds"):
    exp.run(dataclasses.replace(cfg, gen_seeds=2), tmp_path / "bad")   # n_seeds is 1
  with pytest.raises(errors.ConfigError, match="seed_protocol"):
    exp.run(dataclasses.replace(cfg, seed_protocol="fast"), tmp_path / "bad")
  with pytest.raises(errors.ConfigError, match="tune_dtype"):
    exp.run(dataclasses.replace(cfg, tune_dtype="float16"), tmp_path / "bad")
