"""QVix conditions, the LLM cache / replay hook, and the statistics."""

import numpy as np
import pytest

from jaxlab.methods.qvix import controls, llm, prompts

ITEMS = [{"question": prompts.scienceqa_question(f"Q{i}?", ["a", "b"])} for i in range(3)]
REPLIES = ["Pre-question 1: one?", "Pre-question 1: two?\nPre-question 2: three?", "junk"]


def test_single_pass_conditions():
  qv = controls.condition_prompts("qvix", ITEMS, REPLIES)
  assert qv[1] == REPLIES[1] + "\nQuestion: Q1?\nOptions: a\nb\nAnswer:"
  irr = controls.condition_prompts("irrelevant", ITEMS, REPLIES)
  assert irr[0].startswith(REPLIES[1] + "\n") and irr[2].startswith(REPLIES[0] + "\n")
  fil = controls.condition_prompts("filler", ITEMS, REPLIES)
  for f, q, r in zip(fil, qv, REPLIES):
    assert len(f) == len(q)                                  # length-matched
    assert set(f.split("\nQuestion:")[0]) <= set("okay ")   # no content
  base = controls.condition_prompts("baseline", ITEMS, REPLIES)
  assert base[0] == "Question: Q0?\nOptions: a\nb\nAnswer:"
  with pytest.raises(ValueError, match="two-pass"):
    controls.condition_prompts("answered_first", ITEMS, REPLIES)


def test_answered_first_two_pass():
  calls = []

  def answer_fn(idx, ps):
    calls.append((idx, ps))
    return [f"ans{k}" for k in range(len(ps))]

  out = controls.answered_first_prompts(ITEMS, REPLIES, answer_fn)
  assert calls == [([0, 1, 1], ["Question: one?\nAnswer:", "Question: two?\nAnswer:",
                                "Question: three?\nAnswer:"])]
  assert out[1] == ("Pre-question 1: two?\nAnswer: ans1\nPre-question 2: three?\nAnswer: ans2\n"
                    "Question: Q1?\nOptions: a\nb\nAnswer:")
  assert out[2] == "Question: Q2?\nOptions: a\nb\nAnswer:"   # nothing parsed: baseline


def test_cache_and_replay(tmp_path):
  seen = []

  def fake_llm(ps):
    seen.extend(ps)
    return [f"reply to {len(p)}" for p in ps]

  items = ITEMS + [{"question": ITEMS[0]["question"], "subquestion": "REPLAYED"}]
  first = llm.prequestions(items, "hand_v1", fake_llm, model_id="m", cache_dir=tmp_path,
                           batch_size=2)
  assert first[3] == "REPLAYED" and len(seen) == 3
  assert seen[0] == prompts.build_prequestion_prompt("hand_v1", ITEMS[0]["question"])
  again = llm.prequestions(items, "hand_v1", None, model_id="m", cache_dir=tmp_path)
  assert again == first and len(seen) == 3                   # all from cache / replay
  other = llm.prequestions(items[:1], "hand_v1", fake_llm, model_id="m",
                           decoding=llm.Decoding(max_new_tokens=64), cache_dir=tmp_path)
  assert len(seen) == 4 and other == first[:1]               # new decoding: a new key
  keys = {llm.cache_key(t, ITEMS[0]["question"], "m", llm.Decoding())
          for t in prompts.TEMPLATES}
  assert len(keys) == 4
  with pytest.raises(ValueError, match="no LLM"):
    llm.prequestions(ITEMS, "gptrewrite_v1", None, model_id="m", cache_dir=tmp_path)


def test_statistics():
  lo, hi = controls.wilson(50, 100)
  assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
  a = np.array([1, 1, 1, 0] * 25)
  b = np.array([1, 0, 0, 0] * 25)
  m, lo, hi = controls.paired_diff_ci(a, b)
  assert m == pytest.approx(0.5) and lo < 0.5 < hi and lo > 0.3
  assert controls.breakdown([1, 0, 1, 1], ["x", "x", "y", "y"]) == {"x": 0.5, "y": 1.0}
  assert controls.grade_band("grade6") == "1-6" and controls.grade_band("grade7") == "7-12"
