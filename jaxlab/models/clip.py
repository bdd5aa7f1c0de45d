"""CLIP in Flax Linen, named so Hugging Face CLIP keys map 1:1, with deep-prompt inputs.

The module tree mirrors ``transformers.CLIPModel`` (``text_model/encoder/layers_N/self_attn/
q_proj/kernel`` <-> ``text_model.encoder.layers.N.self_attn.q_proj.weight``), so
:mod:`jaxlab.models.clip_io` converts checkpoints with a rule, not a table.

Prompt inputs (MaPLe semantics, arrays rather than callbacks so they jit and vmap):

* text ``ctx`` ``[n, D]`` or ``[B, n, D]`` replaces the token embeddings at positions
  ``1..n`` (right after SOS) before the position embedding is added (CoOp);
* text ``deep`` ``[J, n, D]`` or ``[B, J, n, D]``: before layer ``l`` in ``1..J-1`` the hidden
  states at positions ``1..n`` are replaced by ``deep[l]`` (``deep[0]`` is ignored: layer 0
  uses ``ctx``);
* vision ``deep`` ``[J, n, D]`` or ``[B, J, n, D]``: ``deep[0]`` is appended after the patch
  tokens before ``pre_layrnorm``; before layer ``l`` in ``1..J-1`` the last ``n`` tokens are
  replaced by ``deep[l]``;
* vision ``gate`` ``[L]`` (one scalar per layer, optional): *zero-gated* prompt attention
  (LLaMA-Adapter's zero-init attention). Every query attends to the original tokens with its
  own softmax, and to the prompt tokens with a second softmax scaled by ``gate[l]``. With
  ``gate == 0`` the original tokens never see the prompts, so the CLS output equals the
  un-prompted model exactly, whatever the prompt values.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import errors

Array = jax.Array


@dataclasses.dataclass(frozen=True, kw_only=True)
class TextConfig:
  """Text tower shape (HF ``CLIPTextConfig`` names in comments)."""
  width: int = 512  # hidden_size
  layers: int = 12  # num_hidden_layers
  heads: int = 8  # num_attention_heads
  mlp: int = 2048  # intermediate_size
  vocab_size: int = 49408
  context_length: int = 77  # max_position_embeddings
  eos_token_id: int = 49407  # 2 selects the legacy argmax pooling rule
  eps: float = 1e-5  # layer_norm_eps
  act: str = "quick_gelu"  # hidden_act


@dataclasses.dataclass(frozen=True, kw_only=True)
class VisionConfig:
  """Vision tower shape (HF ``CLIPVisionConfig`` names in comments)."""
  width: int = 768
  layers: int = 12
  heads: int = 12
  mlp: int = 3072
  image_size: int = 224
  patch_size: int = 16
  channels: int = 3  # num_channels
  eps: float = 1e-5
  act: str = "quick_gelu"

  @property
  def num_patches(self) -> int:
    return (self.image_size // self.patch_size) ** 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class CLIPConfig:
  """A whole CLIP model; the defaults are ViT-B/16."""
  text: TextConfig = TextConfig()
  vision: VisionConfig = VisionConfig()
  projection_dim: int = 512
  logit_scale_init: float = 2.6592

  @classmethod
  def from_hf(cls, d: dict[str, Any]) -> CLIPConfig:
    """Builds a config from an HF ``config.json`` dict."""
    t, v = d.get("text_config", {}), d.get("vision_config", {})
    text = TextConfig(
      width=t.get("hidden_size", 512), layers=t.get("num_hidden_layers", 12),
      heads=t.get("num_attention_heads", 8), mlp=t.get("intermediate_size", 2048),
      vocab_size=t.get("vocab_size", 49408),
      context_length=t.get("max_position_embeddings", 77),
      eos_token_id=t.get("eos_token_id", 49407), eps=t.get("layer_norm_eps", 1e-5),
      act=t.get("hidden_act", "quick_gelu"))
    vision = VisionConfig(
      width=v.get("hidden_size", 768), layers=v.get("num_hidden_layers", 12),
      heads=v.get("num_attention_heads", 12), mlp=v.get("intermediate_size", 3072),
      image_size=v.get("image_size", 224), patch_size=v.get("patch_size", 32),
      channels=v.get("num_channels", 3), eps=v.get("layer_norm_eps", 1e-5),
      act=v.get("hidden_act", "quick_gelu"))
    return cls(text=text, vision=vision, projection_dim=d.get("projection_dim", 512),
               logit_scale_init=d.get("logit_scale_init_value", 2.6592))

  def to_hf(self) -> dict[str, Any]:
    """The HF ``config.json`` dict (loadable by ``transformers.CLIPConfig``)."""
    t, v = self.text, self.vision
    return {
      "architectures": ["CLIPModel"], "model_type": "clip",
      "projection_dim": self.projection_dim, "logit_scale_init_value": self.logit_scale_init,
      "text_config": {
        "hidden_size": t.width, "num_hidden_layers": t.layers,
        "num_attention_heads": t.heads, "intermediate_size": t.mlp,
        "vocab_size": t.vocab_size, "max_position_embeddings": t.context_length,
        "eos_token_id": t.eos_token_id, "layer_norm_eps": t.eps, "hidden_act": t.act,
        "projection_dim": self.projection_dim},
      "vision_config": {
        "hidden_size": v.width, "num_hidden_layers": v.layers,
        "num_attention_heads": v.heads, "intermediate_size": v.mlp,
        "image_size": v.image_size, "patch_size": v.patch_size, "num_channels": v.channels,
        "layer_norm_eps": v.eps, "hidden_act": v.act, "projection_dim": self.projection_dim},
    }


def quick_gelu(x: Array) -> Array:
  return x * jax.nn.sigmoid(1.702 * x)


ACTIVATIONS = {
  "quick_gelu": quick_gelu,
  "gelu": functools.partial(jax.nn.gelu, approximate=False),
  "gelu_new": functools.partial(jax.nn.gelu, approximate=True),
}


class Attention(nn.Module):
  """Multi-head self-attention with separate q/k/v/out projections (HF names)."""
  width: int
  heads: int

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None, prompt_keys: Array | None = None,
               gate: Array | None = None) -> Array:
    """x [B, T, D]; mask [T, T] bool (True = attend) or None -> [B, T, D].

    ``prompt_keys`` [T] bool marks prompt tokens; with ``gate`` (a scalar) their attention is
    a separate softmax scaled by ``gate`` (zero-gated prompt attention, see module doc).
    """
    b, t, d = x.shape
    hd = d // self.heads
    split = lambda y: y.reshape(b, t, self.heads, hd)
    q = split(nn.Dense(d, name="q_proj")(x)) * hd ** -0.5
    k = split(nn.Dense(d, name="k_proj")(x))
    v = split(nn.Dense(d, name="v_proj")(x))
    w = jnp.einsum("bqhd,bkhd->bhqk", q, k)
    if gate is None or prompt_keys is None:
      if mask is not None:
        w = jnp.where(mask, w, jnp.finfo(w.dtype).min)
      a = jax.nn.softmax(w, axis=-1)
    else:
      full = jnp.ones((t, t), bool) if mask is None else mask
      own = full & ~prompt_keys[None, :]
      prm = full & prompt_keys[None, :]
      low = jnp.finfo(w.dtype).min
      a = (jax.nn.softmax(jnp.where(own, w, low), axis=-1) * own
           + gate * jax.nn.softmax(jnp.where(prm, w, low), axis=-1) * prm)
    o = jnp.einsum("bhqk,bkhd->bqhd", a, v).reshape(b, t, d)
    return nn.Dense(d, name="out_proj")(o)


class MLP(nn.Module):
  width: int
  hidden: int
  act: str

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = ACTIVATIONS[self.act](nn.Dense(self.hidden, name="fc1")(x))
    return nn.Dense(self.width, name="fc2")(x)


class Block(nn.Module):
  """Pre-LN transformer block: ``x += attn(ln1(x)); x += mlp(ln2(x))``."""
  width: int
  heads: int
  mlp: int
  eps: float
  act: str

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None, prompt_keys: Array | None = None,
               gate: Array | None = None) -> Array:
    h = nn.LayerNorm(epsilon=self.eps, name="layer_norm1")(x)
    x = x + Attention(self.width, self.heads, name="self_attn")(h, mask, prompt_keys, gate)
    h = nn.LayerNorm(epsilon=self.eps, name="layer_norm2")(x)
    return x + MLP(self.width, self.mlp, self.act, name="mlp")(h)


def _batched(p: Array, batch: int, ndim: int) -> Array:
  """Broadcasts an unbatched prompt array (ndim dims) to a leading batch axis."""
  return jnp.broadcast_to(p, (batch,) + p.shape) if p.ndim == ndim else p


class Encoder(nn.Module):
  """A stack of blocks; ``deep`` [B, J, n, D] replaces tokens ``start..start+n`` at 1..J-1."""
  width: int
  heads: int
  mlp: int
  layers: int
  eps: float
  act: str

  @nn.compact
  def __call__(self, x: Array, mask: Array | None = None, deep: Array | None = None,
               start: int = 0, gate: Array | None = None) -> Array:
    """``gate`` [layers]: zero-gated attention to the prompt tokens (needs ``deep``)."""
    if deep is not None and deep.shape[1] > self.layers:
      raise errors.ConfigError(
        f"deep prompts cover {deep.shape[1]} layers but the tower has {self.layers}; "
        "use a prompt depth <= the number of layers")
    if gate is not None and (deep is None or gate.shape != (self.layers,)):
      raise errors.ConfigError(
        f"a prompt gate needs deep prompts and shape ({self.layers},), got "
        f"{None if gate is None else gate.shape} with deep={deep is not None}")
    keys = None
    if gate is not None:
      pos = jnp.arange(x.shape[1])
      keys = (pos >= start) & (pos < start + deep.shape[2])
    for i in range(self.layers):
      if deep is not None and 1 <= i < deep.shape[1]:
        x = x.at[:, start:start + deep.shape[2]].set(deep[:, i].astype(x.dtype))
      g = None if gate is None else gate[i]
      x = Block(self.width, self.heads, self.mlp, self.eps, self.act, name=f"layers_{i}")(
        x, mask, keys, g)
    return x


def pool_index(input_ids: Array, eos_token_id: int) -> Array:
  """The EOS pooling position per row, HF's rule [B, T] -> [B].

  ``eos_token_id == 2`` (legacy OpenAI-converted configs) pools at ``argmax(input_ids)``;
  otherwise at the first position equal to ``eos_token_id`` (position 0 if none: validate
  with :func:`check_eos` first).
  """
  if eos_token_id == 2:
    return jnp.argmax(input_ids, axis=-1)
  return jnp.argmax((input_ids == eos_token_id).astype(jnp.int32), axis=-1)


def check_eos(input_ids: Any, eos_token_id: int) -> None:
  """Raises DataError when a concrete row lacks the EOS id (HF would silently pool pos 0)."""
  if isinstance(input_ids, jax.core.Tracer) or eos_token_id == 2:
    return
  ids = np.asarray(input_ids)
  missing = ~(ids == eos_token_id).any(axis=-1)
  if missing.any():
    raise errors.DataError(
      f"{int(missing.sum())} token rows have no EOS id {eos_token_id} (e.g. row "
      f"{int(np.argmax(missing))}); tokenize with jaxlab.models.clip_tokenizer, which appends "
      "EOT, or fix text_config.eos_token_id")


class TextEmbeddings(nn.Module):
  cfg: TextConfig

  @nn.compact
  def __call__(self, input_ids: Array, ctx: Array | None = None) -> Array:
    c = self.cfg
    x = nn.Embed(c.vocab_size, c.width, name="token_embedding")(input_ids)
    if ctx is not None:
      ctx = _batched(ctx, x.shape[0], 2)
      x = x.at[:, 1:1 + ctx.shape[1]].set(ctx.astype(x.dtype))
    pos = nn.Embed(c.context_length, c.width, name="position_embedding").embedding
    return x + pos[None, :x.shape[1]]


class TextTransformer(nn.Module):
  """Causal text tower; ``__call__`` returns (hidden [B, T, D] after final LN, pooled [B, D])."""
  cfg: TextConfig

  def setup(self):
    c = self.cfg
    self.embeddings = TextEmbeddings(c)
    self.encoder = Encoder(c.width, c.heads, c.mlp, c.layers, c.eps, c.act)
    self.final_layer_norm = nn.LayerNorm(epsilon=c.eps)

  def hidden(self, input_ids: Array, ctx: Array | None = None,
             deep: Array | None = None) -> Array:
    """Encoder output before ``final_layer_norm`` [B, T, D]."""
    x = self.embeddings(input_ids, ctx)
    t = x.shape[1]
    if deep is not None:
      deep = _batched(deep, x.shape[0], 3)
    return self.encoder(x, causal_mask(t), deep, start=1)

  def head(self, hidden: Array, input_ids: Array) -> tuple[Array, Array]:
    """Final LN and EOS pooling: hidden [B, T, D] -> ([B, T, D], pooled [B, D])."""
    x = self.final_layer_norm(hidden)
    idx = pool_index(input_ids, self.cfg.eos_token_id)
    return x, jnp.take_along_axis(x, idx[:, None, None], axis=1)[:, 0]

  def __call__(self, input_ids: Array, ctx: Array | None = None,
               deep: Array | None = None) -> tuple[Array, Array]:
    return self.head(self.hidden(input_ids, ctx, deep), input_ids)


def causal_mask(t: int) -> Array:
  """[T, T] bool, True where a query may attend (keys at or before it)."""
  return jnp.tril(jnp.ones((t, t), bool))


class VisionEmbeddings(nn.Module):
  cfg: VisionConfig

  @nn.compact
  def __call__(self, pixels: Array) -> Array:
    """pixels [B, H, W, C] -> [B, 1 + P, D]."""
    c = self.cfg
    cls = self.param("class_embedding", nn.initializers.normal(c.width ** -0.5), (c.width,))
    x = nn.Conv(c.width, (c.patch_size, c.patch_size), strides=c.patch_size, padding="VALID",
                use_bias=False, name="patch_embedding")(pixels)
    x = x.reshape(x.shape[0], -1, c.width)
    x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, c.width)).astype(x.dtype), x], 1)
    pos = nn.Embed(c.num_patches + 1, c.width, name="position_embedding").embedding
    return x + pos[None]


class VisionTransformer(nn.Module):
  """ViT tower; returns (tokens [B, 1+P(+n), D] after post-LN, pooled CLS [B, D])."""
  cfg: VisionConfig

  def setup(self):
    c = self.cfg
    self.embeddings = VisionEmbeddings(c)
    self.pre_layrnorm = nn.LayerNorm(epsilon=c.eps)
    self.encoder = Encoder(c.width, c.heads, c.mlp, c.layers, c.eps, c.act)
    self.post_layernorm = nn.LayerNorm(epsilon=c.eps)

  def __call__(self, pixels: Array, deep: Array | None = None,
               gate: Array | None = None) -> tuple[Array, Array]:
    c = self.cfg
    if pixels.shape[1:] != (c.image_size, c.image_size, c.channels):
      raise errors.DataError(
        f"pixels have shape {pixels.shape[1:]}, the vision tower expects "
        f"{(c.image_size, c.image_size, c.channels)} (NHWC); resize or transpose first")
    x = self.embeddings(pixels)
    start = x.shape[1]
    if deep is not None:
      deep = _batched(deep, x.shape[0], 3)
      x = jnp.concatenate([x, deep[:, 0].astype(x.dtype)], axis=1)
    x = self.encoder(self.pre_layrnorm(x), None, deep, start=start, gate=gate)
    x = self.post_layernorm(x)
    return x, x[:, 0]


class CLIP(nn.Module):
  """Two towers, bias-free projections and a log-temperature ``logit_scale``."""
  cfg: CLIPConfig

  def setup(self):
    c = self.cfg
    self.text_model = TextTransformer(c.text)
    self.vision_model = VisionTransformer(c.vision)
    self.text_projection = nn.Dense(c.projection_dim, use_bias=False)
    self.visual_projection = nn.Dense(c.projection_dim, use_bias=False)
    self.logit_scale = self.param(
      "logit_scale", nn.initializers.constant(c.logit_scale_init), ())

  def encode_text(self, input_ids: Array, ctx: Array | None = None,
                  deep: Array | None = None) -> Array:
    """input_ids [B, T] -> projected (unnormalised) text features [B, P]."""
    return self.text_projection(self.text_model(input_ids, ctx, deep)[1])

  def encode_image(self, pixels: Array, deep: Array | None = None,
                   gate: Array | None = None) -> Array:
    """pixels [B, H, W, C] -> projected (unnormalised) image features [B, P]."""
    return self.visual_projection(self.vision_model(pixels, deep, gate)[1])

  def image_tokens(self, pixels: Array, deep: Array | None = None,
                   gate: Array | None = None) -> tuple[Array, Array]:
    """Projected CLS [B, P] and projected post-LN patch tokens [B, num_patches, P]."""
    x, pooled = self.vision_model(pixels, deep, gate)
    n = self.cfg.vision.num_patches
    return self.visual_projection(pooled), self.visual_projection(x[:, 1:1 + n])

  def text_hidden(self, input_ids: Array, ctx: Array | None = None,
                  deep: Array | None = None) -> Array:
    """Text encoder output before ``final_layer_norm`` [B, T, D] (EnLa's extra block input)."""
    return self.text_model.hidden(input_ids, ctx, deep)

  def text_head(self, hidden: Array, input_ids: Array) -> Array:
    """Final LN, EOS pooling and projection of text hidden states [B, T, D] -> [B, P]."""
    return self.text_projection(self.text_model.head(hidden, input_ids)[1])

  def __call__(self, input_ids: Array, pixels: Array) -> dict[str, Array]:
    """Both towers and the scaled cosine logits (``logits_per_image`` [B_img, B_txt])."""
    txt = normalize(self.encode_text(input_ids))
    img = normalize(self.encode_image(pixels))
    logits = jnp.exp(self.logit_scale) * img @ txt.T
    return {"text_embeds": txt, "image_embeds": img, "logits_per_image": logits,
            "logits_per_text": logits.T}


def normalize(x: Array, axis: int = -1) -> Array:
  """L2-normalises along ``axis``."""
  return x / jnp.linalg.norm(x, axis=axis, keepdims=True)
