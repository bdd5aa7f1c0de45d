"""Prompt learners on a frozen CLIP: zero-shot, CoOp, CoCoOp, PLOT and EnPrompt.

A learner is a NamedTuple of pure functions over (trainable params, frozen CLIP params):

* ``init(key) -> params`` (only the trainable leaves),
* ``logits(params, clip_params, pixels [B, H, W, C], bank) -> [B, K]`` (inference),
* ``loss(params, clip_params, batch, bank, key) -> (loss, metrics)``.

A *bank* holds what a class set needs, computed once with the frozen CLIP (:func:`make_bank`):
``tids`` [K, T, L] for T templates (``ids`` [K, L] = the first), frozen features ``wset``
[K, T, P] (``w0`` [K, P] = the first), and for EnLa's extra block the frozen text hidden
states ``hidden`` [K*T, L, D]. Every method classifies with :func:`class_features` of its
T classifier templates (one template by default, shared by all methods).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.core import errors
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
  ids = tok([templates[0].format(c) for c in names])
  tids = tok([t.format(c) for c in names for t in templates])
  cliplib.check_eos(tids, model.cfg.text.eos_token_id)
  enc = jax.jit(lambda i: model.apply({"params": clip_params}, i, method=CLIP.encode_text))
  bank = {"ids": jnp.asarray(ids), "tids": jnp.asarray(tids).reshape(k, n, -1),
          "w0": enc(jnp.asarray(ids)), "wset": enc(jnp.asarray(tids)).reshape(k, n, -1)}
  if hidden:
    bank["hidden"] = model.apply({"params": clip_params}, jnp.asarray(tids),
                                 method=CLIP.text_hidden)
  return bank


def class_features(wset: Array) -> Array:
  """The classifier of a text set [K, T, P]: ``normalize(mean_t normalize(w_kt))`` [K, P]."""
  return normalize(normalize(wset).mean(1))


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


def init_ctx(model: CLIP, clip_params: Params, tok, n_ctx: int,
             templates: Sequence[str] = ("a photo of a {}.",)) -> Array:
  """Context vectors [T, n_ctx, D]: each template's words before ``{}`` (CoOp's init).

  With these as context, a learned-context method starts exactly at the zero-shot prompts.
  """
  table = clip_params["text_model"]["embeddings"]["token_embedding"]["embedding"]
  out = []
  for t in templates:
    words = tok.encode(t.split("{}")[0].strip())
    if len(words) != n_ctx:
      raise errors.ConfigError(
        f"template {t!r} has {len(words)} tokens before the class name but n_ctx={n_ctx}; "
        f"learned-context methods need templates with {n_ctx}-token prefixes (e.g. "
        "config.ENSEMBLE)")
    out.append(jnp.asarray(table[np.asarray(words)]))
  return jnp.stack(out)


def ctx_text(model: CLIP, clip_params: Params, tids: Array, ctx: Array) -> Array:
  """Text features [K, T, P] of ids tids [K, T, L] with context ctx [T, n, D] per template."""
  enc = lambda ids, c: _apply(model, clip_params, ids, c, method=CLIP.encode_text)
  return jax.vmap(enc, in_axes=(1, 0), out_axes=1)(tids, ctx)


def zero_shot(model: CLIP) -> Learner:
  def logits(params, clip_params, pixels, bank):
    del params
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    return _scale(clip_params) * img @ class_features(bank["wset"]).T
  return Learner(lambda key: {}, logits, _ce_loss(logits))


def coop(model: CLIP, ctx0: Array) -> Learner:
  """CoOp: learned context vectors (one set per template) replace the template's words."""
  def logits(params, clip_params, pixels, bank):
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    txt = class_features(ctx_text(model, clip_params, bank["tids"], params["ctx"]))
    return _scale(clip_params) * img @ txt.T
  return Learner(lambda key: {"ctx": ctx0}, logits, _ce_loss(logits))


def cocoop(model: CLIP, ctx0: Array) -> Learner:
  """CoCoOp: a meta-net adds an image-conditioned bias to every context vector."""
  p, d = model.cfg.projection_dim, model.cfg.text.width
  meta = modules.MetaNet(max(p // 16, 4), d)

  def init(key):
    return {"ctx": ctx0, "meta": meta.init(key, jnp.zeros((1, p)))["params"]}

  def logits(params, clip_params, pixels, bank):
    img = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
    bias = meta.apply({"params": params["meta"]}, img)  # [B, D]
    ctx = params["ctx"][None] + bias[:, None, None, :]  # [B, T, n, D]
    txt = jax.vmap(lambda c: class_features(ctx_text(model, clip_params, bank["tids"], c)))(ctx)
    return _scale(clip_params) * jnp.einsum("bp,bkp->bk", img, txt)
  return Learner(init, logits, _ce_loss(logits))


def plot(model: CLIP, ctx0: Array, cfg: PromptConfig) -> Learner:
  """PLOT: N prompt sets per class (initialised from the templates in turn, plus noise), OT
  between patch features and the N text features."""
  pick = np.arange(cfg.plot_prompts) % ctx0.shape[0]

  def init(key):
    noise = 0.02 * jax.random.normal(key, (cfg.plot_prompts,) + ctx0.shape[1:])
    return {"ctx": ctx0[pick] + noise}

  def logits(params, clip_params, pixels, bank):
    cls, patches = _apply(model, clip_params, pixels, method=CLIP.image_tokens)
    txt = ctx_text(model, clip_params, bank["tids"][:, pick], params["ctx"])  # [K, N, P]
    out = otlib.ot_logits(patches, txt, cfg.ot)
    if cfg.plot_add_global:
      out = out + normalize(cls) @ class_features(txt).T
    return _scale(clip_params) * out
  return Learner(init, logits, _ce_loss(logits))


def enprompt(model: CLIP, clip_params: Params, cfg: PromptConfig,
             ctx0: Array | None = None) -> Learner:
  """EnPrompt (reconstructed): frozen text + EnLa, gated deep visual prompts strengthened by
  an image-conditioned text feature, and OT between patches and the per-class OT text set.

  The bank holds ``len(cfg.templates)`` classifier templates followed by the OT templates
  (``cfg.ot_templates``); ``ctx0`` [T_all, n, D] is needed for ``enla_kind="coop"``.
  At init (gate 0, identity EnLa) the inference logits equal zero-shot CLIP's.
  """
  vc, tc, p = model.cfg.vision, model.cfg.text, model.cfg.projection_dim
  depth = cfg.vprompt_depth or vc.layers
  n_cls = len(cfg.templates)
  strength = modules.Strength(depth, vc.width, shared=cfg.strength == "class_mean_shared")
  layer = {"adapter": modules.Adapter(p, cfg.adapter_alpha), "linear_id": modules.LinearId(p),
           "extra_block": cliplib.Block(tc.width, tc.heads, tc.mlp, tc.eps, tc.act),
           "none": None, "coop": None}[cfg.enla_kind]

  def init(key):
    k1, k2, k3 = jax.random.split(key, 3)
    out = {"vprompt": 0.02 * jax.random.normal(k1, (depth, cfg.vprompt_len, vc.width))}
    if cfg.vprompt_gate == "zero":
      out["gate"] = jnp.zeros((vc.layers,))
    if cfg.strength != "none":
      out["strength"] = strength.init(k2, jnp.zeros((p,)))["params"]
    if cfg.enla_kind == "extra_block":
      last = jax.tree.map(jnp.asarray, clip_params["text_model"]["encoder"][
        f"layers_{tc.layers - 1}"])
      block = (layer.init(k3, jnp.zeros((1, 2, tc.width)))["params"]
               if cfg.extra_block_init == "random" else last)
      out["enla"] = block if cfg.extra_block_init == "last_raw" else modules.zero_out_block(block)
    elif cfg.enla_kind == "coop":
      out["ctx"] = ctx0
    elif layer is not None:
      out["enla"] = layer.init(k3, jnp.zeros((1, p)))["params"]
    return out

  def text_set(params, clip_params, bank):  # [K, T_all, P]
    k, n, length = bank["tids"].shape
    if cfg.enla_kind == "none":
      return bank["wset"]
    if cfg.enla_kind == "coop":
      return ctx_text(model, clip_params, bank["tids"], params["ctx"])
    if cfg.enla_kind == "extra_block":
      ids = bank["tids"].reshape(k * n, length)
      h = layer.apply({"params": params["enla"]}, bank["hidden"], cliplib.causal_mask(length))
      return _apply(model, clip_params, h, ids, method=CLIP.text_head).reshape(k, n, -1)
    return layer.apply({"params": params["enla"]}, normalize(bank["wset"]))

  def prompts(params, clip_params, pixels, wset, wbar):  # [(B,) J, n_v (+1), Dv]
    vp = params["vprompt"]
    if cfg.strength == "none":
      return vp
    if cfg.strength == "image":
      z0 = normalize(_apply(model, clip_params, pixels, method=CLIP.encode_image))
      s = strength.apply({"params": params["strength"]},
                         modules.image_summary(z0, wbar, _scale(clip_params)))  # [B, J, Dv]
      vp = jnp.broadcast_to(vp, s.shape[:1] + vp.shape)
    else:  # the constant class-mean input (ablation)
      s = strength.apply({"params": params["strength"]}, normalize(wset).mean((0, 1)))
    if cfg.fuse == "add":
      return vp + s[..., None, :]
    return jnp.concatenate([vp, s[..., None, :]], axis=-2)

  def forward(params, clip_params, pixels, bank):
    wset = text_set(params, clip_params, bank)
    wbar = class_features(wset[:, :n_cls])
    deep = prompts(params, clip_params, pixels, wset, wbar)
    cls, patches = _apply(model, clip_params, pixels, deep, params.get("gate"),
                          method=CLIP.image_tokens)
    return _scale(clip_params) * normalize(cls) @ wbar.T, patches, wset[:, n_cls:]

  def ot_logits(clip_params, patches, oset):
    return cfg.ot_lambda * _scale(clip_params) * otlib.ot_logits(patches, oset, cfg.ot)

  def logits(params, clip_params, pixels, bank):
    out, patches, oset = forward(params, clip_params, pixels, bank)
    if cfg.infer_add_ot and cfg.ot_mode != "none":
      out = out + ot_logits(clip_params, patches, oset)
    return out

  def loss(params, clip_params, batch, bank, key):
    del key
    out, patches, oset = forward(params, clip_params, batch["pixels"], bank)
    y = batch["label"]
    metrics = {}
    if cfg.ot_mode == "logits":
      out = out + ot_logits(clip_params, patches, oset)
    total = cross_entropy(out, y)
    if cfg.ot_mode == "loss":
      dist = otlib.ot_distance(patches, oset[y], cfg.ot).mean()
      total = total + cfg.ot_lambda * dist
      metrics["ot"] = dist
    return total, {"acc": jnp.mean(jnp.argmax(out, -1) == y), **metrics}

  return Learner(init, logits, loss)


def bank_templates(cfg: PromptConfig) -> tuple[str, ...]:
  """The templates a method's bank holds: the classifier's, then EnPrompt's OT set."""
  return cfg.templates + (cfg.ot_templates if cfg.method == "enprompt" else ())


def make_learner(model: CLIP, clip_params: Params, tok, cfg: PromptConfig) -> Learner:
  """The learner for ``cfg.method`` (linear probe lives in ``train.linear_probe``)."""
  if cfg.method == "zero_shot":
    return zero_shot(model)
  if cfg.method == "enprompt":
    ctx0 = (init_ctx(model, clip_params, tok, cfg.n_ctx, bank_templates(cfg))
            if cfg.enla_kind == "coop" else None)
    return enprompt(model, clip_params, cfg, ctx0)
  ctx0 = init_ctx(model, clip_params, tok, cfg.n_ctx, cfg.templates)
  if cfg.method == "coop":
    return coop(model, ctx0)
  if cfg.method == "cocoop":
    return cocoop(model, ctx0)
  if cfg.method == "plot":
    return plot(model, ctx0, cfg)
  raise ValueError(f"no prompt learner for {cfg.method!r}")
