"""decoder_llm takes the shared-prefix path for few-shot batches, with the plain path's replies."""

import jax
import numpy as np

from jaxlab.methods.qvix import llm, prompts
from jaxlab.models import generate as gen

QS = ["What colour is the ball?", "How many red squares are there?", "Which shape is larger?",
      "Is the circle left of the star?"]


def _tiny_llm():
  """The bundled tiny random decoder (byte tokenizer), larger weights so greedy ties are rare,
  and a toy chat template."""
  from jaxlab.methods.qvix import bundled

  cfg, params, tok = bundled._decoder("tiny-random")
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map_with_path(
    lambda p, x: np.float32(0.3) * rng.standard_normal(x.shape, np.float32)
    + ("norm_scale" in jax.tree_util.keystr(p)), params)
  tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                       "{% if add_generation_prompt %}<assistant>{% endif %}")
  return cfg, params, tok


def test_few_shot_batches_use_the_prefix_cache_and_match_the_plain_path(monkeypatch):
  cfg, params, tok = _tiny_llm()
  dec = llm.Decoding(max_new_tokens=12)
  batch = [prompts.build_prequestion_input("hand_v1", q, 1) for q in QS]
  plain = llm.decoder_llm(cfg, params, tok, dec, min_prefix=None)(batch)
  calls = []
  real = gen.prefix_cache
  monkeypatch.setattr(gen, "prefix_cache", lambda *a: calls.append(a[2].shape) or real(*a))
  fast = llm.decoder_llm(cfg, params, tok, dec)
  assert fast(batch) == plain
  assert fast(batch[2:] + batch[:1]) == [plain[2], plain[3], plain[0]]  # reuses the cache
  assert len(calls) == 1 and calls[0][0] >= 32
  # prompts without a long common prefix take the plain path
  assert fast(["hi", "yo"]) == llm.decoder_llm(cfg, params, tok, dec, min_prefix=None)(
    ["hi", "yo"])
  assert len(calls) == 1
