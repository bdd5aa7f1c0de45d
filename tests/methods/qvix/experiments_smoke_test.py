"""Smoke runs of the QVix experiments (tiny random models; pipeline checks, not results)."""

import dataclasses
import json

import numpy as np
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
def test_qvix_bundled_smoke_resume_and_cached_standin_reuse(tmp_path, monkeypatch):
  from jaxlab.methods.qvix import pipeline
  cfg = dataclasses.replace(bundled.get_config(smoke=True), cache=str(tmp_path / "cache"))
  res = bundled.run(cfg, tmp_path / "a")
  want = set(cfg.conditions) | {"qvix_gptrewrite_v2", "qvix_zeroshot"}
  assert set(res["conditions"]) == want
  assert res["prequestion_writer"] == {"shots": 2, "shot_style": "prefix", "parse_mode": "strict"}
  assert set(res["prequestions_parsed_any_frac"]) == {"hand_v1", "gptrewrite_v2",
                                                      "hand_v1_zeroshot"}
  assert res["conditions"]["qvix"]["diff_vs_baseline_pooled"][1] <= \
      res["conditions"]["qvix"]["diff_vs_baseline_pooled"][2]
  assert set(res["qvix_vs_controls_pooled"]) == {"irrelevant", "filler", "answered_first"}
  assert "QVix minus each control" in bundled.report(res)
  saved = sorted(f.name for f in (tmp_path / "a" / "eval").iterdir())
  assert saved == ["seed0-gptrewrite_v2.json", "seed0-hand_v1.json", "seed0-zeroshot.json"]
  calls, real = [], pipeline.lvlm_answerer

  def counting(*a, **k):
    fn = real(*a, **k)
    return lambda images, prompts: calls.append(len(prompts)) or fn(images, prompts)

  monkeypatch.setattr(pipeline, "lvlm_answerer", counting)
  (tmp_path / "a" / "eval" / "seed0-zeroshot.json").unlink()   # interrupted in its last eval
  resumed = bundled.run(cfg, tmp_path / "a")
  assert calls == [cfg.n_eval] and resumed["conditions"] == res["conditions"]
  calls.clear()
  again = bundled.run(cfg, tmp_path / "b")                 # stand-in and replies from cache
  assert calls                                             # a new run dir evaluates again
  assert again["standin"] == res["standin"]
  assert again["conditions"]["qvix"]["per_seed"] == res["conditions"]["qvix"]["per_seed"]
  assert "pooled 95% CI" in bundled.report(res)
  assert res["standin"][0]["vision_tower"] == "random-frozen"    # the smoke's vision_tower
  assert "Vision tower: random-frozen (no trained CLIP features)." in bundled.report(res)
  assert bundled.get_config().vision_tower == "clip-standin"     # the study: trained tower
  assert bundled_quick.get_config().n_eval >= 24
  for c in (bundled.get_config(), bundled_quick.get_config()):   # the stand-in study's writer
    assert (c.prequestion_shots, c.shot_style, c.zeroshot_control) == (4, "chat", True)


def test_qvix_bundled_eval_key_covers_what_the_answers_depend_on():
  from jaxlab.methods.qvix.bundled import BundledConfig, _eval_key
  cfg = BundledConfig()
  key = _eval_key(cfg, "/c/standin/abc/seed0", ("baseline", "qvix"), ["r1", "r2"])
  assert key == _eval_key(cfg, "/c/standin/abc/seed0", ("baseline", "qvix"), ["r1", "r2"])
  for other in [_eval_key(cfg, "/c/standin/abc/seed1", ("baseline", "qvix"), ["r1", "r2"]),
                _eval_key(cfg, "/c/standin/abc/seed0", ("baseline",), ["r1", "r2"]),
                _eval_key(cfg, "/c/standin/abc/seed0", ("baseline", "qvix"), ["r1", "r3"])] + [
      _eval_key(dataclasses.replace(cfg, **{f: v}), "/c/standin/abc/seed0", ("baseline", "qvix"),
                ["r1", "r2"])
      for f, v in [("n_eval", 299), ("eval_seed", 1), ("max_new_tokens", 7), ("batch_size", 4),
                   ("parse_mode", "lenient")]]:
    assert other != key


def test_qvix_bundled_summary_pools_seeds_and_compares_qvix_with_each_control(tmp_path):
  from jaxlab.methods.qvix import bundled as lib
  n = 20
  items = [{"skill": ("count", "shape")[i % 2], "choices": ["a", "b", "c", "d"],
            "id": str(i)} for i in range(n)]
  planted = {"baseline": (8, 10), "qvix": (12, 14), "irrelevant": (6, 6), "filler": (12, 2)}

  def cond(k):  # the first k items right
    ok = np.arange(n) < k
    return {"answers": ["a"] * n, "correct": {m: ok for m in ("whole", "letter", "closest")}}

  per_seed = {s: {c: cond(ks[s]) for c, ks in planted.items()} for s in (0, 1)}
  info = {s: {"align": [1.0], "tune": [0.5], "vision_tower": "t", "dir": "d"} for s in (0, 1)}
  out = lib._summarize(lib.BundledConfig(), items, {}, per_seed, info, tmp_path)
  assert out["conditions"]["qvix"]["per_seed"] == [0.6, 0.7]
  assert out["conditions"]["qvix"]["diff_vs_baseline_pooled"][0] == pytest.approx(8 / 40)
  vs = out["qvix_vs_controls_pooled"]
  assert set(vs) == {"irrelevant", "filler"}                    # answered_first not run
  assert vs["irrelevant"][0] == pytest.approx(14 / 40)          # (12 + 14 - 6 - 6) / 40
  assert vs["filler"][0] == pytest.approx(12 / 40)              # (0 + 12) / 40
  assert vs["irrelevant"][1] <= vs["irrelevant"][0] <= vs["irrelevant"][2]
  assert out["chance_acc"] == 0.25 and (tmp_path / "accuracy.png").exists()
