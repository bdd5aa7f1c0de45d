"""A LLaVA-style vision-language model: CLIP vision tower -> 2-layer projector -> decoder.

The pieces (HF ``LlavaForConditionalGeneration`` semantics):

* vision tower: jaxlab's CLIP ViT modules (``clip.VisionEmbeddings``, ``clip.Block``) run
  up to the deepest selected layer; ``feature_layers`` index HF's ``hidden_states`` (index 0
  is the ``pre_layrnorm`` output, ``-2`` the default: the second-to-last layer's output);
  ``select="default"`` drops the CLS token, ``"full"`` keeps it; ``post_layernorm`` is never
  used (so it is not a parameter here);
* projector: ``linear_1 -> act (exact GELU) -> linear_2`` on the concatenated features;
* splice: the ``[n_img, N, D]`` projected features fill the positions whose id is
  ``image_token_id`` in row-major order (HF ``masked_scatter``), so a prompt holds ``N``
  consecutive image tokens per image (``expand_image_tokens``);
* language model: the head-addressable ``jaxlab.models.decoder``; the spliced embeddings
  enter through its ``Intervention.embed_value`` at the image positions, so prefill and the
  KV-cache generation loop are the decoder's own (no second decoder implementation).

Parameters are a plain dict ``{"vision": ..., "projector": ..., "decoder": ...}``; the
forward is the pure ``forward(cfg, params, ids, mask, pixels)``. Loading HF checkpoints is
``jaxlab.models.loaders.llava``; image preprocessing is ``preprocess`` below (NumPy, Pillow
resampling as HF's PIL image-processor backend).

References:
  Liu et al., "Visual Instruction Tuning" (LLaVA), NeurIPS 2023; "Improved Baselines with
  Visual Instruction Tuning" (LLaVA-1.5), CVPR 2024.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.models import clip, decoder
from jaxlab.models import generate as gen
from jaxlab.models.decoder_config import DecoderConfig

Array = jax.Array
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LVLMConfig:
  """A LLaVA-style model (static, hashable). HF ``LlavaConfig`` names in comments."""

  vision: clip.VisionConfig
  text: DecoderConfig
  image_token_id: int  # image_token_index
  feature_layers: tuple[int, ...] = (-2,)  # vision_feature_layer (int or list)
  select: str = "default"  # vision_feature_select_strategy: "default" drops CLS, or "full"
  projector_act: str = "gelu"  # projector_hidden_act
  projector_bias: bool = True  # multimodal_projector_bias

  def __post_init__(self):
    if self.select not in ("default", "full"):
      raise ConfigError(f"select={self.select!r}; use 'default' (drop CLS) or 'full'.")
    if self.projector_act not in clip.ACTIVATIONS:
      raise ConfigError(f"projector_act={self.projector_act!r} is not supported; use one of "
                        f"{sorted(clip.ACTIVATIONS)}.")
    n = self.vision.layers + 1
    for i in self.feature_layers:
      if not -n <= i < n:
        raise ConfigError(f"feature layer {i} is outside the {n} vision hidden states.")

  @property
  def hidden_index(self) -> tuple[int, ...]:
    """The selected hidden states as non-negative indices (0 = pre_layrnorm output)."""
    n = self.vision.layers + 1
    return tuple(i % n for i in self.feature_layers)

  @property
  def vision_layers_run(self) -> int:
    """How many vision blocks the forward runs (deeper ones are never read)."""
    return max(self.hidden_index)

  @property
  def num_image_tokens(self) -> int:
    """N: tokens per image in the prompt."""
    return self.vision.num_patches + (self.select == "full")

  def replace(self, **kw) -> LVLMConfig:
    return dataclasses.replace(self, **kw)


class _Stack(nn.Module):
  """CLIP blocks ``layers_0..layers_{n-1}``; returns every hidden state (input first)."""

  cfg: clip.VisionConfig
  n: int

  @nn.compact
  def __call__(self, x: Array) -> list[Array]:
    c, out = self.cfg, [x]
    for i in range(self.n):
      x = clip.Block(c.width, c.heads, c.mlp, c.eps, c.act, name=f"layers_{i}")(x)
      out.append(x)
    return out


class VisionTower(nn.Module):
  """LLaVA's vision tower: pixels [n, H, W, C] -> selected features [n, N, len(layers)*Dv]."""

  cfg: LVLMConfig

  @nn.compact
  def __call__(self, pixels: Array) -> Array:
    v = self.cfg.vision
    if pixels.shape[1:] != (v.image_size, v.image_size, v.channels):
      raise DataError(f"pixels have shape {tuple(pixels.shape[1:])}, the vision tower expects "
                      f"{(v.image_size, v.image_size, v.channels)} (NHWC); use "
                      "jaxlab.models.lvlm.preprocess first.")
    x = clip.VisionEmbeddings(v, name="embeddings")(pixels)
    x = nn.LayerNorm(epsilon=v.eps, name="pre_layrnorm")(x)
    hidden = _Stack(v, self.cfg.vision_layers_run, name="encoder")(x)
    first = 1 if self.cfg.select == "default" else 0
    return jnp.concatenate([hidden[i][:, first:] for i in self.cfg.hidden_index], axis=-1)


class Projector(nn.Module):
  """``linear_2(act(linear_1(x)))`` into the decoder's width."""

  cfg: LVLMConfig

  @nn.compact
  def __call__(self, x: Array) -> Array:
    d, b = self.cfg.text.d_model, self.cfg.projector_bias
    x = nn.Dense(d, use_bias=b, name="linear_1")(x)
    x = clip.ACTIVATIONS[self.cfg.projector_act](x)
    return nn.Dense(d, use_bias=b, name="linear_2")(x)


def init_params(cfg: LVLMConfig, key: Array) -> dict:
  """Random parameters ``{"vision", "projector", "decoder"}`` (plain dicts)."""
  kv, kp, kd = jax.random.split(key, 3)
  v = cfg.vision
  px = jnp.zeros((1, v.image_size, v.image_size, v.channels), jnp.float32)
  vis = VisionTower(cfg).init(kv, px)["params"]
  width = v.width * len(cfg.feature_layers)
  proj = Projector(cfg).init(kp, jnp.zeros((1, 1, width), jnp.float32))["params"]
  return {"vision": vis, "projector": proj, "decoder": decoder.init_params(cfg.text, kd)}


def param_shapes(cfg: LVLMConfig) -> dict:
  """The parameter tree of ``init_params`` with shape tuples as leaves (nothing allocated)."""
  tree = jax.eval_shape(functools.partial(init_params, cfg), jax.random.key(0))
  return jax.tree.map(lambda s: tuple(s.shape), tree)


def vision_features(cfg: LVLMConfig, vision_params: dict, pixels: Array) -> Array:
  """Selected vision-tower features [n, N, len(feature_layers) * Dv] (before the projector)."""
  return VisionTower(cfg).apply({"params": vision_params}, jnp.asarray(pixels, jnp.float32))


def project(cfg: LVLMConfig, projector_params: dict, feats: Array) -> Array:
  """Projector: [..., F] -> [..., D_text]."""
  return Projector(cfg).apply({"params": projector_params}, feats)


def image_embeddings(cfg: LVLMConfig, params: dict, pixels: Array) -> Array:
  """pixels [n, H, W, C] (preprocessed) -> projected image tokens [n, N, D_text]."""
  return project(cfg, params["projector"], vision_features(cfg, params["vision"], pixels))


def splice(cfg: LVLMConfig, ids: Array, image_embeds: Array) -> decoder.Intervention:
  """The decoder intervention that puts image tokens at the ``image_token_id`` positions.

  Args:
    cfg: model config.
    ids: [b, t] token ids holding N image tokens per image, in image order (row-major).
    image_embeds: [n_img, N, D] projected image tokens.

  Returns:
    ``Intervention(z_pos=[b, t] image mask, embed_value=[b, t, D])``: the k-th image
    position (row-major) gets the k-th row of ``image_embeds.reshape(-1, D)``.
  """
  ids = jnp.asarray(ids)
  is_img = ids == cfg.image_token_id
  flat = image_embeds.reshape(-1, image_embeds.shape[-1])
  if not isinstance(ids, jax.core.Tracer):
    n_tok, n_feat = int(is_img.sum()), flat.shape[0]
    if n_tok != n_feat:
      raise DataError(f"the prompts hold {n_tok} image tokens but the images give {n_feat} "
                      f"({image_embeds.shape[0]} x {cfg.num_image_tokens}); build prompts with "
                      "expand_image_tokens (one '<image>' per image).")
  idx = jnp.clip(jnp.cumsum(is_img.reshape(-1)) - 1, 0, flat.shape[0] - 1)
  value = jnp.take(flat, idx, axis=0).reshape(ids.shape + (flat.shape[-1],))
  return decoder.Intervention(z_pos=is_img, embed_value=value)


def forward(cfg: LVLMConfig, params: dict, ids: Array, mask: Array, pixels: Array) -> Array:
  """Logits [b, t, V] (fp32) of left-padded prompts with their images spliced in.

  Args:
    cfg: model config (static under jit).
    params: ``{"vision", "projector", "decoder"}``.
    ids: [b, t] int32, left-padded, with N image tokens per image.
    mask: [b, t] 1 for real tokens.
    pixels: [n_img, H, W, C] preprocessed images, in the order their tokens appear.
  """
  iv = splice(cfg, ids, image_embeddings(cfg, params, pixels))
  return decoder.apply(cfg.text, params["decoder"], ids, mask, intervene=iv)[0]


jit_forward = jax.jit(forward, static_argnums=0)


@functools.partial(jax.jit, static_argnums=0)
def _intervention(cfg: LVLMConfig, params: dict, ids: Array, pixels: Array):
  return splice(cfg, ids, image_embeddings(cfg, params, pixels))


def generate(cfg: LVLMConfig, params: dict, ids, mask, pixels, *, max_new_tokens: int,
             key: Array | None = None, temperature: float = 0.0, top_p: float = 1.0,
             stop_ids: Sequence[int] | None = None, pad_to: int | None = gen.PAD_TO,
             batch_to: int | None = None) -> gen.Generation:
  """Batched generation with the decoder's KV cache (greedy when ``temperature == 0``).

  The image tokens are spliced at prefill only; decode steps embed the new text tokens.
  Shape buckets as ``jaxlab.models.generate.generate``: the prompts are left-padded (masked
  slots) to a multiple of ``pad_to`` and the batch grown to a multiple of ``batch_to`` rows
  (copies of the last row, with its images; dropped from the result) before the image
  splice, so batches of nearby lengths share the compiled splice and generation programs.
  ``pad_to=None`` / ``batch_to=None``: the exact shapes.
  Returns ``jaxlab.models.generate.Generation`` (tokens [b, N_new], done, lengths).
  """
  ids = np.asarray(ids, np.int32)
  n_tok, n_img = int((ids == cfg.image_token_id).sum()), int(np.shape(pixels)[0])
  if n_tok != n_img * cfg.num_image_tokens:  # eager check: inside jit it cannot raise
    raise DataError(f"the prompts hold {n_tok} image tokens but {n_img} images need "
                    f"{n_img * cfg.num_image_tokens}; build prompts with expand_image_tokens.")
  b, t = ids.shape
  b_to = gen.bucket_len(b, batch_to)
  t_to = gen._padded_len(cfg.text, t, pad_to, max_new_tokens)
  pad_id = cfg.text.pad_id or 0
  if pad_id == cfg.image_token_id:  # a pad slot must not count as an image token
    pad_id = 0 if cfg.image_token_id else 1
  ids, mask = gen.pad_batch(ids, mask, b_to, t_to, pad_id)
  if b_to > b:  # the copied last row needs its images again, in row-major order
    last = int((ids[b - 1] == cfg.image_token_id).sum()) // cfg.num_image_tokens
    if last:
      extra = jnp.tile(jnp.asarray(pixels)[n_img - last:], (b_to - b, 1, 1, 1))
      pixels = jnp.concatenate([jnp.asarray(pixels), extra])
  iv = _intervention(cfg, params, jnp.asarray(ids), jnp.asarray(pixels, jnp.float32))
  out = gen.generate(cfg.text, params["decoder"], ids, mask, max_new_tokens=max_new_tokens,
                     key=key, temperature=temperature, top_p=top_p, stop_ids=stop_ids,
                     intervene=iv, pad_to=None)
  return gen._rows(out, b)


def expand_image_tokens(ids: Sequence[int], image_token_id: int, n: int) -> list[int]:
  """Each single image token becomes ``n`` consecutive ones (HF's processor expansion).

  A run that already has exactly ``n`` tokens is kept; any other run length is an error.
  """
  out, i, ids = [], 0, list(ids)
  while i < len(ids):
    if ids[i] != image_token_id:
      out.append(ids[i])
      i += 1
      continue
    j = i
    while j < len(ids) and ids[j] == image_token_id:
      j += 1
    if j - i not in (1, n):
      raise DataError(f"a run of {j - i} image tokens; write one '<image>' per image "
                      f"(it expands to {n}).")
    out.extend([image_token_id] * n)
    i = j
  return out


# ------------------------------------------------------------------ image preprocessing


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageProcessing:
  """HF ``CLIPImageProcessor`` / ``LlavaImageProcessor`` settings (preprocessor_config.json)."""

  shortest_edge: int | None = 224  # size.shortest_edge; None with height/width: fixed size
  size_hw: tuple[int, int] | None = None  # size.height/width
  crop_hw: tuple[int, int] | None = (224, 224)  # crop_size (None: no center crop)
  resample: int = 3  # PIL code: 3 = BICUBIC
  rescale: float = 1 / 255
  mean: tuple[float, ...] = CLIP_MEAN
  std: tuple[float, ...] = CLIP_STD
  pad_to_square: bool = False  # LLaVA-1.5 "pad" aspect mode (do_pad in LlavaImageProcessor)

  @classmethod
  def from_hf(cls, d: dict[str, Any]) -> ImageProcessing:
    """From a ``preprocessor_config.json`` dict; options other than these raise."""
    if d.get("image_grid_pinpoints") is not None:
      raise ConfigError("image_grid_pinpoints (LLaVA-NeXT anyres tiling) is not supported; "
                        "only single-tile LLaVA / CLIP image processing.")
    size = d.get("size", {"shortest_edge": 224})
    size = {"shortest_edge": size} if isinstance(size, int) else size
    crop = d.get("crop_size", {"height": 224, "width": 224})
    crop = {"height": crop, "width": crop} if isinstance(crop, int) else crop
    return cls(
      shortest_edge=size.get("shortest_edge") if d.get("do_resize", True) else None,
      size_hw=(size["height"], size["width"]) if "height" in size and d.get("do_resize", True)
      else None,
      crop_hw=(crop["height"], crop["width"]) if d.get("do_center_crop", True) else None,
      resample=int(d.get("resample", 3)),
      rescale=d.get("rescale_factor", 1 / 255) if d.get("do_rescale", True) else 1.0,
      mean=tuple(d.get("image_mean", CLIP_MEAN)) if d.get("do_normalize", True) else (0.0,),
      std=tuple(d.get("image_std", CLIP_STD)) if d.get("do_normalize", True) else (1.0,),
      pad_to_square=bool(d.get("do_pad", False)))


def _resize_hw(h: int, w: int, p: ImageProcessing) -> tuple[int, int] | None:
  if p.size_hw is not None:
    return p.size_hw
  if p.shortest_edge is None:
    return None
  short, long = (h, w) if h <= w else (w, h)
  new_long = int(p.shortest_edge * long / short)
  return (p.shortest_edge, new_long) if h <= w else (new_long, p.shortest_edge)


def preprocess_one(image: np.ndarray, p: ImageProcessing = ImageProcessing()) -> np.ndarray:
  """One uint8 image [H, W] or [H, W, 3] -> float32 pixels [h, w, 3] (NHWC row)."""
  from PIL import Image  # noqa: PLC0415 (only the preprocessing needs Pillow)

  img = np.asarray(image)
  if img.dtype != np.uint8:
    raise DataError(f"images must be uint8 [H, W(, 3)], got {img.dtype}; convert with "
                    "np.asarray(pil_image.convert('RGB')).")
  if img.ndim == 2:
    img = np.repeat(img[..., None], 3, -1)
  if img.ndim != 3 or img.shape[-1] not in (3, 4):
    raise DataError(f"image shape {img.shape}; expected [H, W], [H, W, 3] or [H, W, 4].")
  img = img[..., :3]
  if p.pad_to_square and img.shape[0] != img.shape[1]:
    m = max(img.shape[:2])
    fill = np.zeros(3, np.uint8)
    fill[:len(p.mean[:3])] = [int(x * 255) for x in p.mean[:3]]  # HF: mean * 255 per channel
    canvas = np.broadcast_to(fill, (m, m, 3)).copy()
    top, left = (m - img.shape[0]) // 2, (m - img.shape[1]) // 2
    canvas[top:top + img.shape[0], left:left + img.shape[1]] = img
    img = canvas
  hw = _resize_hw(img.shape[0], img.shape[1], p)
  if hw is not None and hw != img.shape[:2]:
    img = np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), resample=p.resample))
  if p.crop_hw is not None:
    img = _center_crop(img, p.crop_hw)
  x = (img.astype(np.float64) * p.rescale).astype(np.float32)
  mean, std = np.asarray(p.mean, np.float32), np.asarray(p.std, np.float32)
  return ((x - mean) / std).astype(np.float32)


def _center_crop(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  """HF ``center_crop``: top = (H - h) // 2 (zero-padded first when the image is smaller)."""
  h, w = hw
  ph, pw = max(h - img.shape[0], 0), max(w - img.shape[1], 0)
  if ph or pw:
    img = np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
  top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
  return img[top:top + h, left:left + w]


def preprocess(images: Sequence[np.ndarray], p: ImageProcessing = ImageProcessing()) -> np.ndarray:
  """A list of uint8 images -> float32 pixels [n, h, w, 3] (all must end the same size)."""
  out = [preprocess_one(im, p) for im in images]
  shapes = {o.shape for o in out}
  if len(shapes) > 1:
    raise DataError(f"preprocessed images have different shapes {sorted(shapes)}; set a "
                    "crop_size (or fixed size) so every image ends the same size.")
  return np.stack(out)
