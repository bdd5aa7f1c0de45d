"""Smoke runs of the SPT experiments (tiny random decoder + SmolLM2's tokenizer)."""

import json

import pytest

from jaxlab.core.metrics import all_finite as _finite
from jaxlab.core import errors
from jaxlab.models.loaders import gguf_file

pytest.importorskip("gguf")


def _asset():
  try:
    gguf_file.smollm2_path()
  except errors.AssetMissingError as e:
    pytest.skip(f"SmolLM2 asset absent (tokenizer source): {e}")


def test_quick_smoke(tmp_path):
  _asset()
  from experiments.spt import smollm2_quick as exp
  cfg = exp.get_config(smoke=True)
  assert cfg.model == "tiny-random"
  result = exp.run(cfg, tmp_path)
  assert _finite({k: v for k, v in result.items() if k != "knockout_apology_random_mean"})
  heads = json.loads((tmp_path / "selected_heads.json").read_text())["heads"]
  assert len(heads) == cfg.k and heads == result["selected_heads"]
  assert (tmp_path / "scores_sorry_glad.npy").exists()
  assert result["table"]["spt"]["trainable"] == cfg.k * 2 * 64 * 16
  assert set(result["table"]) == {"base", "spt", "random"}
  assert (tmp_path / "verdict.png").exists()
  assert "| SPT (top-k heads) |" in exp.report(result)
  # Resume: a second run reads every stage back and gives the same summary.
  assert exp.run(cfg, tmp_path) == result
