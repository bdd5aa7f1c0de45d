"""The dialogue renderer matches SmolLM2's chat template token for token."""

import random

import pytest

from jaxlab.core import errors
from jaxlab.methods.spt import dialogue, prompts, questions, train_data

gguf = pytest.importorskip("gguf")
jinja2 = pytest.importorskip("jinja2")


@pytest.fixture(scope="module")
def tok():
  from jaxlab.models.loaders import gguf_file
  from jaxlab.models.tokenizer import Tokenizer
  try:
    path = gguf_file.smollm2_path()
  except errors.AssetMissingError as e:
    pytest.skip(f"SmolLM2 asset absent: {e}")
  reader = gguf.GGUFReader(path)
  meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
  return Tokenizer.from_gguf(meta)


def _jinja(tok, messages, add_generation_prompt):
  env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
  return env.from_string(tok.chat_template).render(
    messages=messages, add_generation_prompt=add_generation_prompt)


def _conversations():
  rng = random.Random(0)
  qs = questions.arithmetic_mc(3, seed=5) + questions.general_mc()[:3]
  convs = [dialogue.question_messages(qs[0]),
           dialogue.challenge_messages(qs[1], "The answer is (B)."),
           dialogue.challenge_messages(qs[2], "C", prompts.HELDOUT_CHALLENGES[1]),
           dialogue.letter_messages(qs[3], "The answer is (A).", "I'm sorry, it is (D).")]
  convs += [train_data.conversation(q, k, rng) for q, k in
            zip(qs[3:], ("insist", "revise", "insist"))]
  return convs


@pytest.mark.parametrize("i", range(7))
def test_render_matches_template_token_for_token(tok, i):
  conv = _conversations()[i]
  for gen in (False, True):
    ids, loss = dialogue.render_ids(tok, conv, add_generation_prompt=gen)
    ref = tok.encode(_jinja(tok, conv, gen))
    assert ids == ref
    assert ids == tok.encode(tok.chat(conv, add_generation_prompt=gen))
    assert len(loss) == len(ids)
    want = "".join(m["content"] + "<|im_end|>" for m in conv if m["role"] == "assistant")
    assert tok.decode([t for t, w in zip(ids, loss) if w], skip_special=False) == want


def test_last_only_mask_and_tokenize(tok):
  conv = _conversations()[5]
  ids, loss = dialogue.render_ids(tok, conv, last_only=True)
  assert tok.decode([t for t, w in zip(ids, loss) if w], skip_special=False) == (
    conv[-1]["content"] + "<|im_end|>")
  arr = train_data.tokenize(tok, [conv, _conversations()[6]], max_len=len(ids) + 20)
  row = arr["ids"][0][arr["mask"][0] == 1].tolist()
  assert row == ids[:-1]  # the trailing "\n" after the last <|im_end|> is dropped
  assert arr["loss_mask"][0][arr["mask"][0] == 1].tolist() == loss[:-1]
  assert arr["loss_mask"][:, -1].tolist() == [1.0, 1.0]  # <|im_end|> is the last target
  with pytest.raises(errors.DataError):
    train_data.tokenize(tok, [conv], max_len=10)


def test_counterfactual_pair_and_prefill(tok):
  q = questions.arithmetic_mc(1)[0]
  x_r = dialogue.prompt_text(tok, dialogue.challenge_messages(q, "The answer is (A)."), "I'm")
  x_c = dialogue.prompt_text(
    tok, dialogue.challenge_messages(q, "The answer is (A).", prompts.COUNTER_CHALLENGE), "I'm")
  r, c = tok.encode(x_r), tok.encode(x_c)
  assert len(r) == len(c) + 1  # "don't" -> "do" drops one token ("'t")
  assert tok.tokens(prompts.CHALLENGE)[:3] == ["I", "Ġdon", "'t"]
  assert r[-2:] == tok.encode("I'm") and len(tok.encode("I'm")) == 2
  assert r[:-2] == tok.encode(tok.chat(dialogue.challenge_messages(q, "The answer is (A).")))


def test_patch_pair_and_challenge_span(tok):
  import numpy as np
  from jaxlab.methods.spt import localize
  qs = questions.arithmetic_mc(3, seed=2) + questions.general_mc()[:2]
  pair, span = localize.build_pair(tok, qs, prefill="I'm")
  ids_r, ids_c = np.asarray(pair.ids_r), np.asarray(pair.ids_c)
  assert ids_r.shape == ids_c.shape and ids_r.shape[1] % 16 == 0
  assert (ids_r[:, -2:] == tok.encode("I'm")).all() and (ids_c[:, -2:] == tok.encode("I'm")).all()
  for i in range(len(qs)):
    assert tok.decode(ids_r[i][span[i]].tolist()) == prompts.CHALLENGE
    real_r = ids_r[i][np.asarray(pair.mask_r)[i] == 1]
    real_c = ids_c[i][np.asarray(pair.mask_c)[i] == 1]
    assert len(real_r) == len(real_c) + 1
    assert tok.decode(real_c.tolist(), skip_special=False).count(prompts.COUNTER_CHALLENGE) == 1
