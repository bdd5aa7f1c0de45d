"""The few-shot pre-question writer, its cache keys, and the lenient parser (no SmolLM2)."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.qvix import llm, prompts

Q = prompts.scienceqa_question("What shape is the red object?", ["circle", "square"])


def test_zero_shots_is_the_released_prompt():
  assert prompts.build_prequestion_input("hand_v1", Q, 0) == \
      prompts.build_prequestion_prompt("hand_v1", Q)
  with pytest.raises(ConfigError, match="prequestion_shots"):
    prompts.build_prequestion_input("hand_v1", Q, len(prompts.PREQUESTION_DEMOS) + 1)
  with pytest.raises(ConfigError, match="shot_style"):
    prompts.build_prequestion_input("hand_v1", Q, 2, "system")


@pytest.mark.parametrize("shots", [2, 3])
def test_fewshot_chat_turns_are_demos_then_item(shots):
  msgs = prompts.build_prequestion_input("hand_v1", Q, shots, "chat")
  assert [m["role"] for m in msgs] == ["user", "assistant"] * shots + ["user"]
  for k in range(shots):
    dq, dr = prompts.PREQUESTION_DEMOS[k]
    assert msgs[2 * k]["content"] == prompts.build_prequestion_prompt("hand_v1", dq)
    assert msgs[2 * k + 1]["content"] == dr
    assert len(prompts.parse_prequestions(dr)) in (2, 3)   # each demo is in the format
  assert msgs[-1]["content"] == prompts.build_prequestion_prompt("hand_v1", Q)


def test_fewshot_demos_follow_the_template_line_format():
  msgs = prompts.build_prequestion_input("gptrewrite_v1", Q, 2)
  for k in range(2):
    demo = msgs[2 * k + 1]["content"]
    assert demo.startswith("Preliminary Question 1: ") and "Pre-question" not in demo
    assert prompts.parse_prequestions(demo) == \
        prompts.parse_prequestions(prompts.PREQUESTION_DEMOS[k][1])
  assert prompts.build_prequestion_input("hand_v1", Q, 1)[1]["content"].startswith(
    "Pre-question 1: ")


def test_fewshot_prefix_is_demos_then_item():
  text = prompts.build_prequestion_input("hand_v1", Q, 2, "prefix")
  real = prompts.build_prequestion_prompt("hand_v1", Q)
  assert text.endswith("Now your turn:\n" + real)
  at = [text.index(prompts.PREQUESTION_DEMOS[k][1]) for k in range(2)]
  assert at[0] < at[1] < text.index("Now your turn:")
  assert prompts.PREQUESTION_DEMOS[2][1] not in text                  # only k demos


def test_cache_key_changes_with_the_option():
  dec = llm.Decoding(max_new_tokens=64)
  # zero-shot keys are the pre-option formula: replies cached before the option stay valid
  q = hashlib.sha256(Q.encode()).hexdigest()
  old = hashlib.sha256(json.dumps(["hand_v1", q, "m", dataclasses.asdict(dec)],
                                  sort_keys=True).encode()).hexdigest()
  assert llm.cache_key("hand_v1", Q, "m", dec) == old
  keys = {llm.cache_key("hand_v1", Q, "m", dec, k, s) for k in (0, 2, 3)
          for s in prompts.SHOT_STYLES}
  assert len(keys) == 5                                 # shots=0 ignores the style; 4 others
  assert llm.prompt_id("hand_v1", 3, "chat") == "hand_v1+" + prompts.demos_id(3, "chat")


def test_cache_key_changes_when_a_demo_is_edited(monkeypatch):
  before = llm.cache_key("hand_v1", Q, "m", llm.Decoding(), 2)
  demos = list(prompts.PREQUESTION_DEMOS)
  demos[1] = (demos[1][0], demos[1][1] + "\nPre-question 3: Is it raining?")
  monkeypatch.setattr(prompts, "PREQUESTION_DEMOS", tuple(demos))
  assert llm.cache_key("hand_v1", Q, "m", llm.Decoding(), 2) != before
  assert llm.cache_key("hand_v1", Q, "m", llm.Decoding(), 1) == \
      llm.cache_key("hand_v1", Q, "m", llm.Decoding(), 1)  # deterministic


def test_prequestions_fewshot_not_served_from_zero_shot_cache(tmp_path):
  seen = []

  def fake_llm(ps):
    seen.extend(ps)
    return ["Pre-question 1: Is it red?" if isinstance(p, list) else "restated" for p in ps]

  items = [{"question": Q}]
  zero = llm.prequestions(items, "hand_v1", fake_llm, model_id="m", cache_dir=tmp_path)
  few = llm.prequestions(items, "hand_v1", fake_llm, model_id="m", cache_dir=tmp_path, shots=2)
  assert zero == ["restated"] and few == ["Pre-question 1: Is it red?"] and len(seen) == 2
  assert seen[1] == prompts.build_prequestion_input("hand_v1", Q, 2)   # the chat turns
  again = llm.prequestions(items, "hand_v1", None, model_id="m", cache_dir=tmp_path, shots=2)
  assert again == few
  files = sorted(json.loads(p.read_text())["template"] for p in tmp_path.glob("*/*.json"))
  assert files == ["hand_v1", llm.prompt_id("hand_v1", 2)]


@pytest.mark.parametrize("reply,strict,lenient", [
  ("1. Is the ball red?\n2) How many cats are there?\n(3) Where is it?",
   [], ["Is the ball red?", "How many cats are there?", "Where is it?"]),
  ("- Is it big?\n* **Is it small?**\n\u2022 Is it round?",
   [], ["Is it big?", "Is it small?", "Is it round?"]),     # markdown bold stripped
  ("The main question is: which is larger?\n\nHere are the 4 possible answers:\n\n"
   "- The blue shape is larger\n- The purple shape is larger", [], []),   # no questions
  ("Is the ball red?\nWhat colour is it?", [], []),              # unnumbered, unbulleted
  ("1. The ball is red.\n2. It is round", [], []),                # listed, but not questions
  ("Pre-question 1: Is it red?\n2. Where is it?", ["Is it red?"], ["Is it red?", "Where is it?"]),
  ("", [], []),
])
def test_lenient_parser(reply, strict, lenient):
  assert prompts.parse_prequestions(reply) == strict
  assert prompts.parse_prequestions(reply, "lenient") == lenient
  with pytest.raises(ConfigError, match="parse_mode"):
    prompts.parse_prequestions(reply, "loose")


def test_parse_mode_reaches_the_lvlm_prompt():
  reply = "1. Is it red?\n2. Where is it?"
  assert prompts.build_lvlm_prompt(reply, Q, reply_mode="parsed") == "Question: " + Q + "Answer:"
  assert prompts.build_lvlm_prompt(reply, Q, reply_mode="parsed", parse_mode="lenient") == \
      "Pre-question 1: Is it red?\nPre-question 2: Where is it?\nQuestion: " + Q + "Answer:"


def test_decoder_llm_renders_chat_turns_whole():
  """A tiny random decoder: message lists go through the chat template as one text."""
  from jaxlab.methods.qvix import bundled

  cfg, params, tok = bundled._decoder("tiny-random")
  fn = llm.decoder_llm(cfg, params, tok, llm.Decoding(max_new_tokens=2))
  msgs = prompts.build_prequestion_input("hand_v1", Q, 2)
  with pytest.raises(ConfigError, match="chat template"):
    fn([msgs])                                         # byte tokenizer: no chat template
  tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                       "{% if add_generation_prompt %}<assistant>{% endif %}")
  rendered = []
  real_batch = tok.batch
  tok.batch = lambda texts, **kw: (rendered.extend(texts), real_batch(texts, **kw))[1]
  out = fn([msgs, "one user message"])
  assert len(out) == 2 and all(isinstance(o, str) for o in out)
  assert rendered[0] == tok.chat(msgs) and rendered[0].count("<assistant>") == 3
  assert rendered[1] == tok.chat([{"role": "user", "content": "one user message"}])
  assert np.all([r.endswith("<assistant>") for r in rendered])


def test_format_check_compliance_counts():
  from jaxlab.methods.qvix import format_check

  items = [{"question": prompts.scienceqa_question("What shape is the red object?", ["a", "b"])},
           {"question": prompts.scienceqa_question("How many shapes are there?", ["1", "2"])},
           {"question": Q}]
  replies = ["Pre-question 1: Where is the red object?",                 # about the item
             "Pre-question 1: Where is the fence in the image?",          # a verbatim demo line
             "Pre-question 1: xxxx\nPre-question 2: xxxx"]                # placeholders only
  c = format_check.compliance(items, replies)
  assert (c["n_parsed_ge1"], c["n_about_item_no_demo_noun"]) == (2, 1)
  assert (c["about_item_frac"], c["demo_copy_frac"]) == (0.5, 0.5)
  assert (c["n_with_verbatim_demo_line"], c["n_placeholder_replies"]) == (1, 1)
  assert c["mean_count"] == pytest.approx(2 / 3)
