"""Prompt learners on a frozen CLIP: zero-shot, CoOp, CoCoOp, PLOT and EnPrompt.

A learner is a NamedTuple of pure functions over (trainable params, frozen CLIP params):

* ``init(key) -> params`` (only the trainable leaves),
* ``logits(params, clip_params, pixels [B, H, W, C], bank) -> [B, K]`` (inference),
* ``loss(params, clip_params, batch, bank, key) -> (loss, metrics)``.

A *bank* holds what a class set needs, computed once with the frozen CLIP (:func:`make_bank`):
``ids`` [K, L] for "a photo of a {c}.", ``tids`` [K, N, L] for N templates, frozen features
``w0`` [K, P] and ``wset`` [K, N, P], and for EnLa's extra block the frozen text hidden states
``hidden`` [K*N, L, D].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.methods.enla import enla as modules
from jaxlab.methods.enla import ot as otlib
from jaxlab.methods.enla.config import PromptConfig
from jaxlab.models import clip as cliplib
from jaxlab.models.clip import CLIP, normalize

Array = jax.Array
Params = Any


class Learner(NamedTuple):
  init: Callable[[Array], Params]
  logits: Callable[[Params, Params, Array, dict], Array]
  loss: Callable[[Params, Params, dict, dict, Array], tuple[Array, dict]]


def make_bank(model: CLIP, clip_params: Params, tok, classnames: Sequence[str],
              templates: Sequence[str], hidden: bool = False) -> dict[str, Array]:
  """Frozen per-class text inputs and features for one class set (see module doc)."""
  names = list(classnames)
  k, n = len(names), len(templates)
  ids = tok([f"a photo of a {c}." for c in names])
  tids = tok([t.format(c) for c in names for t in templates])
  cliplib.check_eos(ids, model.cfg.text.eos_token_id)
  cliplib.check_eos(tids, model.cfg.text.eos_token_id)
  enc = jax.jit(lambda i: model.apply({"params": clip_params}, i, method=CLIP.encode_text))
  bank = {"ids": jnp.asarray(ids), "tids": jnp.asarray(tids).reshape(k, n, -1),
          "w0": enc(jnp.asarray(ids)), "wset": enc(jnp.asarray(tids)).reshape(k, n, -1)}
  if hidden:
    bank["hidden"] = model.apply({"params": clip_params}, jnp.asarray(tids),
                                 method=CLIP.text_hidden)
  return bank


def _apply(model: CLIP, clip_params: Params, *args, method) -> Any:
  return model.apply({"params": clip_params}, *args, method=method)


def _scale(clip_params: Params) -> Array:
  return jnp.exp(clip_params["logit_scale"])


def cross_entropy(logits: Array, labels: Array) -> Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _ce_loss(logits_fn):
  def loss(params, clip_params, batch, bank, key):
    del key
    logits = logits_fn(params, clip_params, batch["pixels"], bank)
    acc = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
    return cross_entropy(logits, batch["label"]), {"acc": acc}
  return loss


def init_ctx(model: CLIP, clip_params: Params, tok, n_ctx: int) -> Array:
  """Context vectors [n_ctx, D] from the token embeddings of "a photo of a" (CoOp's init)."""
  words = tok.encode("a photo of a")
  if n_ctx != len(words):
    raise ValueError("CoOp-style init needs n_ctx == 4 (the words of 'a photo of a')")
  table = clip_params["text_model"]["embeddings"]["token_embedding"]["embedding"]
  return jnp.asarray(table[np.asarray(words)])


def zero_shot(model: CLIP) -> Learner:
  def logits(params, clip_params, pixels, bank):
    del params
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    return _scale(clip_params) * img @ normalize(bank["w0"]).T
  return Learner(lambda key: {}, logits, _ce_loss(logits))


def coop(model: CLIP, ctx0: Array) -> Learner:
  """CoOp: shared context vectors replace "a photo of a" in every class prompt."""
  def logits(params, clip_params, pixels, bank):
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    txt = _apply(model, clip_params, bank["ids"], params["ctx"], method=CLIP.encode_text)
    return _scale(clip_params) * img @ normalize(txt).T
  return Learner(lambda key: {"ctx": ctx0}, logits, _ce_loss(logits))


def cocoop(model: CLIP, ctx0: Array) -> Learner:
  """CoCoOp: a meta-net adds an image-conditioned bias to every context vector."""
  p, d = model.cfg.projection_dim, model.cfg.text.width
  meta = modules.MetaNet(max(p // 16, 4), d)

  def init(key):
    return {"ctx": ctx0, "meta": meta.init(key, jnp.zeros((1, p)))["params"]}

  def logits(params, clip_params, pixels, bank):
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    ctx = params["ctx"][None] + meta.apply({"params": params["meta"]}, img)[:, None, :]
    enc = lambda c: _apply(model, clip_params, bank["ids"], c, method=CLIP.encode_text)
    txt = normalize(jax.vmap(enc)(ctx))  # [B, K, P]
    return _scale(clip_params) * jnp.einsum("bp,bkp->bk", img, txt)
  return Learner(init, logits, _ce_loss(logits))


def plot(model: CLIP, ctx0: Array, cfg: PromptConfig) -> Learner:
  """PLOT: N prompt sets per class, OT between patch features and the N text features."""
  def init(key):
    noise = 0.02 * jax.random.normal(key, (cfg.plot_prompts,) + ctx0.shape)
    return {"ctx": ctx0[None] + noise}

  def logits(params, clip_params, pixels, bank):
    cls, patches = _apply(model, clip_params, pixels, method=CLIP.image_tokens)
    enc = lambda c: _apply(model, clip_params, bank["ids"], c, method=CLIP.encode_text)
    txt = jnp.swapaxes(jax.vmap(enc)(params["ctx"]), 0, 1)  # [K, N, P]
    out = otlib.ot_logits(patches, txt, cfg.ot)
    if cfg.plot_add_global:
      out = out + normalize(cls) @ normalize(normalize(txt).mean(1)).T
    return _scale(clip_params) * out
  return Learner(init, logits, _ce_loss(logits))


def enprompt(model: CLIP, clip_params: Params, cfg: PromptConfig) -> Learner:
  """EnPrompt (reconstructed): frozen text + EnLa, deep visual prompts + strengthening, OT."""
  vc, tc, p = model.cfg.vision, model.cfg.text, model.cfg.projection_dim
  depth = cfg.vprompt_depth or vc.layers
  strength = modules.Strength(depth, vc.width, shared=cfg.strength == "shared")
  layer = {"adapter": modules.Adapter(p, cfg.adapter_alpha), "linear_id": modules.LinearId(p),
           "extra_block": cliplib.Block(tc.width, tc.heads, tc.mlp, tc.eps, tc.act),
           "none": None}[cfg.enla_kind]

  def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    out = {"vprompt": 0.02 * jax.random.normal(k1, (depth, cfg.vprompt_len, vc.width))}
    if cfg.strength != "none":
      out["strength"] = strength.init(k2, jnp.zeros((p,)))["params"]
    if cfg.enla_kind == "extra_block":
      last = clip_params["text_model"]["encoder"][f"layers_{tc.layers - 1}"]
      out["enla"] = (jax.tree.map(jnp.asarray, last) if cfg.extra_block_init == "last" else
                     layer.init(k3, jnp.zeros((1, 2, tc.width)))["params"])
    elif layer is not None:
      out["enla"] = layer.init(k3, jnp.zeros((1, p)))["params"]
    return out

  def text_set(params, clip_params, bank):  # [K, N, P]
    k, n, length = bank["tids"].shape
    if cfg.enla_kind == "none":
      return bank["wset"]
    if cfg.enla_kind == "extra_block":
      ids = bank["tids"].reshape(k * n, length)
      h = layer.apply({"params": params["enla"]}, bank["hidden"], cliplib.causal_mask(length))
      return _apply(model, clip_params, h, ids, method=CLIP.text_head).reshape(k, n, -1)
    return layer.apply({"params": params["enla"]}, normalize(bank["wset"]))

  def prompts(params, wset):  # [J, n_v (+1), Dv]
    vp = params["vprompt"]
    if cfg.strength == "none":
      return vp
    s = strength.apply({"params": params["strength"]}, normalize(wset).mean((0, 1)))
    if cfg.fuse == "add":
      return vp + s[:, None, :]
    return jnp.concatenate([vp, s[:, None, :]], axis=1)

  def forward(params, clip_params, pixels, bank):
    wset = text_set(params, clip_params, bank)
    wbar = normalize(normalize(wset).mean(1))
    cls, patches = _apply(model, clip_params, pixels, prompts(params, wset),
                          method=CLIP.image_tokens)
    return _scale(clip_params) * normalize(cls) @ wbar.T, patches, wset

  def logits(params, clip_params, pixels, bank):
    out, patches, wset = forward(params, clip_params, pixels, bank)
    if cfg.ot_mode == "logits" or (cfg.infer_add_ot and cfg.ot_mode != "none"):
      out = out + _scale(clip_params) * otlib.ot_logits(patches, wset, cfg.ot)
    return out

  def loss(params, clip_params, batch, bank, key):
    del key
    out, patches, wset = forward(params, clip_params, batch["pixels"], bank)
    y = batch["label"]
    metrics = {}
    if cfg.ot_mode == "logits":
      out = out + _scale(clip_params) * otlib.ot_logits(patches, wset, cfg.ot)
    total = cross_entropy(out, y)
    if cfg.ot_mode == "loss":
      dist = otlib.ot_distance(patches, wset[y], cfg.ot).mean()
      total = total + cfg.ot_lambda * dist
      metrics["ot"] = dist
    return total, {"acc": jnp.mean(jnp.argmax(out, -1) == y), **metrics}

  return Learner(init, logits, loss)


def make_learner(model: CLIP, clip_params: Params, tok, cfg: PromptConfig) -> Learner:
  """The learner for ``cfg.method`` (linear probe lives in ``train.linear_probe``)."""
  if cfg.method == "zero_shot":
    return zero_shot(model)
  if cfg.method == "enprompt":
    return enprompt(model, clip_params, cfg)
  ctx0 = init_ctx(model, clip_params, tok, cfg.n_ctx)
  if cfg.method == "coop":
    return coop(model, ctx0)
  if cfg.method == "cocoop":
    return cocoop(model, ctx0)
  if cfg.method == "plot":
    return plot(model, ctx0, cfg)
  raise ValueError(f"no prompt learner for {cfg.method!r}")
