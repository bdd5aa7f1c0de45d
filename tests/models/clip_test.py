"""Flax CLIP vs a tiny random HF CLIPModel (built here with torch CPU), loader and hooks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.core import errors
from jaxlab.models import clip, clip_io


def _hf_model(tmp_path, eos_token_id):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  torch.manual_seed(0)
  cfg = transformers.CLIPConfig(
    text_config={"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "intermediate_size": 64,
                     "max_position_embeddings": 16, "eos_token_id": eos_token_id,
                     "bos_token_id": 98, "pad_token_id": 0},
    vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "intermediate_size": 64},
    projection_dim=16)
  model = transformers.CLIPModel(cfg).eval()
  with torch.no_grad():  # random, non-trivial LayerNorms and logit scale
    for name, p in model.named_parameters():
      if "norm" in name or "layrnorm" in name:
        p.add_(0.1 * torch.randn_like(p))
    model.logit_scale.fill_(2.0)
  model.save_pretrained(tmp_path)
  return torch, model


def _inputs():
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 90, size=(3, 16)).astype(np.int64)
  ids[:, 0] = 98
  for row, pos in enumerate([5, 9, 15]):  # EOS at different positions, padding after it
    ids[row, pos] = 99
    ids[row, pos + 1:] = 0
  pixels = rng.normal(size=(2, 3, 32, 32)).astype(np.float32)
  return ids, pixels


@pytest.mark.parametrize("eos_token_id", [99, 2])
def test_logits_match_hf(tmp_path, eos_token_id):
  torch, model = _hf_model(tmp_path, eos_token_id)
  ids, pixels = _inputs()
  with torch.no_grad():
    ref = model(input_ids=torch.tensor(ids), pixel_values=torch.tensor(pixels))
    text_ref = model.text_model(input_ids=torch.tensor(ids))
  cfg, params = clip_io.load_hf_clip(tmp_path)
  assert cfg.text.eos_token_id == eos_token_id
  out = clip.CLIP(cfg).apply({"params": params}, jnp.asarray(ids, jnp.int32),
                              jnp.asarray(pixels.transpose(0, 2, 3, 1)))
  for ours, theirs in [("logits_per_image", ref.logits_per_image),
                       ("text_embeds", ref.text_embeds), ("image_embeds", ref.image_embeds)]:
    np.testing.assert_allclose(out[ours], theirs.numpy(), atol=1e-4, rtol=0)
  hidden, pooled = clip.CLIP(cfg).apply({"params": params}, jnp.asarray(ids, jnp.int32),
                                         method=lambda m, i: m.text_model(i))
  np.testing.assert_allclose(pooled, text_ref.pooler_output.numpy(), atol=1e-4, rtol=0)
  np.testing.assert_allclose(hidden, text_ref.last_hidden_state.numpy(), atol=1e-4, rtol=0)


def test_hf_roundtrip_and_save(tmp_path):
  pytest.importorskip("torch")
  _hf_model(tmp_path, 99)
  from safetensors.numpy import load_file
  tensors = load_file(tmp_path / "model.safetensors")
  back = clip_io.params_to_hf(clip_io.params_from_hf(tensors))
  keys = {k for k in tensors if not k.endswith("position_ids")}
  assert set(back) == keys
  for k in keys:
    np.testing.assert_array_equal(back[k], tensors[k])


def _tiny_cfg():
  return clip.CLIPConfig(
    text=clip.TextConfig(width=16, layers=2, heads=2, mlp=32, vocab_size=50,
                         context_length=8, eos_token_id=49),
    vision=clip.VisionConfig(width=16, layers=3, heads=2, mlp=32, image_size=16,
                             patch_size=8),
    projection_dim=8)


def test_missing_eos_raises():
  with pytest.raises(errors.DataError):
    clip.check_eos(np.array([[1, 2, 3, 0]]), 49)
  clip.check_eos(np.array([[1, 2, 49, 0]]), 49)


def test_deep_prompt_hooks():
  cfg = _tiny_cfg()
  model = clip.CLIP(cfg)
  ids = jnp.array([[48, 3, 4, 5, 49, 0, 0, 0]], jnp.int32)
  pix = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  params = model.init(jax.random.key(1), ids, pix)["params"]
  apply = lambda method, *a: model.apply({"params": params}, *a, method=method)
  # Depth-1 deep prompts are a plain concatenation at layer 0.
  p = jax.random.normal(jax.random.key(2), (1, 2, 16))
  x = apply(lambda m, px: m.vision_model.embeddings(px), pix)
  manual = jnp.concatenate([x, jnp.broadcast_to(p[0], (2, 2, 16))], 1)
  vm = lambda m, h: m.vision_model.post_layernorm(
    m.vision_model.encoder(m.vision_model.pre_layrnorm(h)))
  np.testing.assert_allclose(apply(lambda m, px: m.vision_model(px, p)[0], pix),
                             apply(vm, manual), atol=1e-5)
  # Deeper prompts change the output; replacing with the layer's own tokens does not.
  deep = jax.random.normal(jax.random.key(3), (3, 2, 16))
  assert not np.allclose(apply(clip.CLIP.encode_image, pix, deep),
                         apply(clip.CLIP.encode_image, pix, deep[:1]))
  # Text ctx equal to the real token embeddings is the plain encoder.
  emb = params["text_model"]["embeddings"]["token_embedding"]["embedding"][ids[0, 1:3]]
  np.testing.assert_allclose(apply(clip.CLIP.encode_text, ids, emb),
                             apply(clip.CLIP.encode_text, ids), atol=1e-6)


def _np_softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("causal", [False, True])
def test_gated_prompt_attention_matches_numpy_reference(causal):
  """Zero-gated prompt attention (LLaMA-Adapter style), written out in float64 numpy."""
  attn = clip.Attention(8, 2)
  x = jax.random.normal(jax.random.key(0), (2, 5, 8))
  p = attn.init(jax.random.key(1), x)["params"]
  keys = jnp.array([False, False, False, True, True])
  mask = clip.causal_mask(5) if causal else None
  got = attn.apply({"params": p}, x, mask, keys, jnp.float32(0.7))
  d = lambda name, h: np.asarray(h, np.float64) @ np.asarray(p[name]["kernel"], np.float64) + \
    np.asarray(p[name]["bias"], np.float64)
  xs = np.asarray(x, np.float64)
  q, k, v = (d(n, xs).reshape(2, 5, 2, 4) for n in ("q_proj", "k_proj", "v_proj"))
  w = np.einsum("bqhd,bkhd->bhqk", q / 2.0, k)  # head_dim 4 -> scale 1/2
  allowed = np.tril(np.ones((5, 5), bool)) if causal else np.ones((5, 5), bool)
  own, prm = allowed & ~np.asarray(keys)[None], allowed & np.asarray(keys)[None]
  a = np.zeros_like(w)
  for qi in range(5):
    o = own[qi]
    a[:, :, qi, o] = _np_softmax(w[:, :, qi, o])
    if prm[qi].any():
      a[:, :, qi, prm[qi]] = 0.7 * _np_softmax(w[:, :, qi, prm[qi]])
  ref = d("out_proj", np.einsum("bhqk,bkhd->bqhd", a, v).reshape(2, 5, 8))
  np.testing.assert_allclose(got, ref, atol=1e-5)


def test_zero_gate_leaves_image_features_unchanged():
  """gate 0: prompts of any value do not reach CLS (the EnPrompt step-0 guarantee)."""
  cfg = _tiny_cfg()
  model = clip.CLIP(cfg)
  ids = jnp.array([[48, 3, 4, 5, 49, 0, 0, 0]], jnp.int32)
  pix = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  params = model.init(jax.random.key(1), ids, pix)["params"]
  apply = lambda *a: model.apply({"params": params}, *a, method=clip.CLIP.encode_image)
  layers = cfg.vision.layers
  deep = 3.0 * jax.random.normal(jax.random.key(3), (layers, 2, cfg.vision.width))
  plain = apply(pix)
  np.testing.assert_allclose(apply(pix, deep, jnp.zeros(layers)), plain, atol=1e-6)
  assert np.abs(apply(pix, deep, jnp.full(layers, 0.3)) - plain).max() > 1e-3
  assert np.abs(apply(pix, deep) - plain).max() > 1e-3  # ungated prompts move it
  with pytest.raises(errors.ConfigError, match="prompt gate"):
    apply(pix, deep, jnp.zeros(layers + 1))
