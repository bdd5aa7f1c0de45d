"""Smoke runs of the QVix experiments (tiny random models; pipeline checks, not results)."""

import dataclasses
import json

import pytest

from experiments.qvix import bundled, bundled_quick, scienceqa


@pytest.mark.slow
def test_qvix_scienceqa_smoke(tmp_path):
  cfg = dataclasses.replace(scienceqa.get_config(smoke=True), llm_cache=str(tmp_path / "c"))
  res = scienceqa.run(cfg, tmp_path)
  assert res["n_items"] == 6 and len(res["item_ids"]) == 6
  assert set(res["conditions"]) == set(cfg.conditions)
  for r in res["conditions"].values():
    assert 0.0 <= r["acc"] <= 1.0 and r["ci95"][0] <= r["acc"] <= r["ci95"][1]
  rows = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
  assert len(rows) == 6 and rows[0]["reply"].startswith("Pre-question 1:")
  assert (tmp_path / "accuracy.png").exists()
  assert "Released" in scienceqa.report(res)


@pytest.mark.slow
def test_qvix_bundled_smoke_and_cached_standin_reuse(tmp_path):
  cfg = dataclasses.replace(bundled.get_config(smoke=True), cache=str(tmp_path / "cache"))
  res = bundled.run(cfg, tmp_path / "a")
  want = set(cfg.conditions) | {"qvix_gptrewrite_v2", "qvix_zeroshot"}
  assert set(res["conditions"]) == want
  assert res["prequestion_writer"] == {"shots": 2, "shot_style": "prefix", "parse_mode": "strict"}
  assert set(res["prequestions_parsed_any_frac"]) == {"hand_v1", "gptrewrite_v2",
                                                      "hand_v1_zeroshot"}
  assert res["conditions"]["qvix"]["diff_vs_baseline_pooled"][1] <= \
      res["conditions"]["qvix"]["diff_vs_baseline_pooled"][2]
  again = bundled.run(cfg, tmp_path / "b")                 # stand-in and replies from cache
  assert again["standin"] == res["standin"]
  assert again["conditions"]["qvix"]["per_seed"] == res["conditions"]["qvix"]["per_seed"]
  assert "pooled 95% CI" in bundled.report(res)
  saved = sorted(f.name for f in (tmp_path / "a" / "eval").iterdir())
  assert saved == ["seed0-gptrewrite_v2.json", "seed0-hand_v1.json", "seed0-zeroshot.json"]


@pytest.mark.slow
def test_qvix_bundled_resumes_saved_evaluations(tmp_path, monkeypatch):
  from jaxlab.methods.qvix import pipeline
  cfg = dataclasses.replace(bundled.get_config(smoke=True), cache=str(tmp_path / "cache"),
                            templates=("hand_v1",), zeroshot_control=False)
  res = bundled.run(cfg, tmp_path)
  (tmp_path / "eval" / "seed0-hand_v1.json").replace(tmp_path / "keep.json")
  calls = []
  real = pipeline.lvlm_answerer

  def counting(*a, **k):
    fn = real(*a, **k)
    return lambda images, prompts: calls.append(len(prompts)) or fn(images, prompts)

  monkeypatch.setattr(pipeline, "lvlm_answerer", counting)
  again = bundled.run(cfg, tmp_path)                  # the lost evaluation is recomputed
  assert calls and again["conditions"] == res["conditions"]
  calls.clear()
  resumed = bundled.run(cfg, tmp_path)                # everything saved: no LVLM call at all
  assert calls == [] and resumed["conditions"] == res["conditions"]
  other = bundled.run(dataclasses.replace(cfg, max_new_tokens=3), tmp_path)  # another key
  assert calls and set(other["conditions"]) == set(res["conditions"])
  assert bundled_quick.get_config().n_eval >= 24
  for c in (bundled.get_config(), bundled_quick.get_config()):   # the stand-in study's writer
    assert (c.prequestion_shots, c.shot_style, c.zeroshot_control) == (4, "chat", True)
