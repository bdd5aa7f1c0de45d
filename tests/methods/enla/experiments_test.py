"""Smoke runs of the EnPrompt experiments: finish in seconds, numbers finite."""

import math

import pytest

from jaxlab.models import clip_standin


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
  monkeypatch.setattr(clip_standin, "cache_path", lambda cfg: tmp_path / "standin")


def _finite(x):
  if isinstance(x, dict):
    return all(_finite(v) for v in x.values())
  if isinstance(x, list):
    return all(_finite(v) for v in x)
  return not isinstance(x, float) or math.isfinite(x)


def test_clip_pretrain_smoke(tmp_path):
  from experiments.enla import clip_pretrain
  out = clip_pretrain.run(clip_pretrain.get_config(smoke=True), tmp_path / "pt")
  assert 0 <= out["zero_shot/digits"] <= 1 and _finite(out)
  assert (clip_standin.cache_path(None) / "model.safetensors").exists()
  assert "zero-shot" in clip_pretrain.report(out)


def test_bundled_smoke(tmp_path):
  from experiments.enla import bundled
  out = bundled.run(bundled.get_config(smoke=True), tmp_path / "b")
  avg = out["base_to_novel_average"]
  assert set(avg) >= {"zero_shot", "coop", "cocoop", "plot", "enprompt", "linear_probe"}
  assert avg["linear_probe"]["novel"] is None and _finite(avg["enprompt"])
  assert "enprompt" in bundled.report(out)
  # Step-0 rows: CoOp (context = the template's words) and EnPrompt (gate 0, identity EnLa)
  # classify exactly as zero-shot CLIP does.
  per = out["base_to_novel"]["digits"]
  for row in ("coop_step0", "enprompt_step0"):
    for split in ("base", "novel"):
      assert per[row][split]["seeds"] == [per["zero_shot"][split]["mean"]] * 2, (row, split)
  # Resume: a rerun in the same out dir reads every finished run back, same numbers.
  again = bundled.run(bundled.get_config(smoke=True), tmp_path / "b")
  assert again["base_to_novel"] == out["base_to_novel"]


def test_clip_vitb16_smoke(tmp_path):
  from experiments.enla import clip_vitb16
  out = clip_vitb16.run(clip_vitb16.get_config(smoke=True), tmp_path / "v")
  assert _finite(out["base_to_novel_average"]["enprompt"])
