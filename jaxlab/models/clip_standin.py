"""A small CLIP-style stand-in, trained contrastively on the bundled image sets.

No CLIP weights ship offline, so the prompt-learning experiments (EnPrompt) and the vision
tower of QVix's stand-in LVLM come from a two-tower model trained here: our Linen CLIP (HF key
names) with a from-scratch causal text tower and the real CLIP BPE tokenizer, on MNIST,
Fashion-MNIST, sklearn digits and procedural shapes scenes with templated / compositional
captions. Every downstream class is seen in pretraining (as for CLIP).

Captions that repeat inside a batch (many images of "digit seven") are positives of each other:
the InfoNCE targets are the row-normalised caption-equality matrix.
"""


import dataclasses
import hashlib
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxlab.data import shapes, toy_suite
from jaxlab.models import clip, clip_io
from jaxlab.models.clip_tokenizer import CLIPTokenizer

CLASS_TEMPLATES = ("a photo of a {}.", "a {}", "a picture of a {}", "an image of the {}",
                   "a photo of the {}, centered")
DIGIT_EXTRA = ("a handwritten {w}", "the number {w}")
_SHAPE_COMBOS = [(s, c, z, p) for s in range(8) for c in range(8) for z in range(2)
                 for p in range(3)]


@dataclasses.dataclass(frozen=True, kw_only=True)
class StandInConfig:
  """Shape and training budget of the stand-in CLIP."""
  width: int = 96
  layers: int = 4
  heads: int = 4
  patch: int = 4
  text_width: int = 64
  text_layers: int = 2
  context: int = 16
  projection: int = 64
  steps: int = 1500
  batch: int = 128
  lr: float = 2e-3
  per_dataset: int = 20000  # training rows per bundled set (shapes: generated)
  datasets: tuple[str, ...] = ("mnist", "fashion_mnist", "digits", "shapes")
  seed: int = 0

  def clip_config(self) -> clip.CLIPConfig:
    return clip.CLIPConfig(
      text=clip.TextConfig(width=self.text_width, layers=self.text_layers, heads=4,
                           mlp=4 * self.text_width, context_length=self.context),
      vision=clip.VisionConfig(width=self.width, layers=self.layers, heads=self.heads,
                               mlp=4 * self.width, image_size=32, patch_size=self.patch),
      projection_dim=self.projection)

  def tag(self) -> str:
    blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:10]


# The stand-in ``enla-bundled`` reuses (``jaxlab run clip-pretrain`` trains and caches it) and
# the larger one for ``enla-bundled-full`` (``--set standin.preset=full``).
QUICK = StandInConfig(width=64, layers=3, patch=8, steps=800, batch=128, per_dataset=10000)
FULL = StandInConfig(width=96, layers=4, patch=4, steps=3000, batch=128, per_dataset=20000)
PRESETS = {"quick": QUICK, "full": FULL}


def _class_captions(name: str) -> list[list[str]]:
  out = []
  for i, cname in enumerate(toy_suite.classnames(name)):
    caps = [t.format(cname) for t in CLASS_TEMPLATES]
    if name in ("mnist", "digits"):
      caps += [t.format(w=toy_suite.NUMBER_WORDS[i]) for t in DIGIT_EXTRA]
    out.append(caps)
  return out


def caption_table(cfg: StandInConfig, tok: CLIPTokenizer) -> tuple[np.ndarray, dict]:
  """All pretraining captions tokenized [C, L], with group offsets/counts per dataset."""
  texts, start, count, offsets = [], [], [], {}
  for name in cfg.datasets:
    offsets[name] = len(start)
    groups = ([[shapes.caption(*combo, template=t) for t in range(len(shapes.CAPTION_TEMPLATES))]
               for combo in _SHAPE_COMBOS] if name == "shapes" else _class_captions(name))
    for caps in groups:
      start.append(len(texts))
      count.append(len(caps))
      texts += caps
  groups = {"start": np.asarray(start, np.int32), "count": np.asarray(count, np.int32),
            "offset": offsets}
  return tok(texts, cfg.context), groups


def pretraining_pool(cfg: StandInConfig, offsets: dict) -> dict[str, np.ndarray]:
  """``image`` uint8 [N, 32, 32, 3] and caption ``group`` int32 [N] over all datasets."""
  images, groups = [], []
  for name in cfg.datasets:
    if name == "shapes":
      a = shapes.sample(cfg.per_dataset, seed=cfg.seed + 7)
      combo = ((a["shape"] * 8 + a["colour"]) * 2 + a["size"]) * 3 + a["position"]
      images.append(a["image"])
      groups.append(offsets[name] + combo)
    else:
      s = toy_suite.load(name, "train", limit=cfg.per_dataset, seed=cfg.seed)
      images.append(s.images)
      groups.append(offsets[name] + s.labels)
  return {"image": np.concatenate(images), "group": np.concatenate(groups).astype(np.int32)}


def contrastive_loss(params, model: clip.CLIP, pixels, ids) -> tuple[jax.Array, dict]:
  """Symmetric InfoNCE with duplicate captions as shared positives."""
  out = model.apply({"params": params}, ids, pixels)
  logits = out["logits_per_image"]
  same = jnp.all(ids[:, None, :] == ids[None, :, :], axis=-1).astype(jnp.float32)
  target = same / same.sum(-1, keepdims=True)
  loss_i = optax.softmax_cross_entropy(logits, target).mean()
  loss_t = optax.softmax_cross_entropy(logits.T, target).mean()
  acc = jnp.mean(jnp.take_along_axis(target, jnp.argmax(logits, -1)[:, None], 1) > 0)
  return 0.5 * (loss_i + loss_t), {"acc": acc, "temperature": jnp.exp(params["logit_scale"])}


def make_loss(model: clip.CLIP, table: np.ndarray, groups: dict):
  """``loss_fn(params, model_state, batch, key)`` for :func:`jaxlab.core.train.make_step`."""
  table, start, count = jnp.asarray(table), jnp.asarray(groups["start"]), jnp.asarray(
    groups["count"])

  def loss_fn(params, model_state, batch, key):
    g = batch["group"]
    pick = jax.random.randint(key, g.shape, 0, 1 << 20) % count[g]
    ids = table[start[g] + pick]
    params = {**params, "logit_scale": jnp.clip(params["logit_scale"], 0.0, jnp.log(100.0))}
    loss, aux = contrastive_loss(params, model, toy_suite.to_pixels(batch["image"]), ids)
    return loss, (model_state, aux)

  return loss_fn


def optimizer(cfg: StandInConfig) -> optax.GradientTransformation:
  sched = optax.warmup_cosine_decay_schedule(0.0, cfg.lr, min(100, cfg.steps // 10 + 1),
                                             cfg.steps, cfg.lr * 0.02)
  return optax.adamw(sched, weight_decay=0.05)


def cache_path(cfg: StandInConfig) -> pathlib.Path:
  """Where a trained stand-in lives (``$JAXLAB_CACHE`` or ~/.cache/jaxlab)."""
  from jaxlab.data import cache_root
  return cache_root() / "clip_standin" / cfg.tag()


def save(cfg: StandInConfig, params, metrics: dict, path: pathlib.Path | None = None) -> None:
  clip_io.save_hf_clip(path or cache_path(cfg), cfg.clip_config(), jax.device_get(params),
                       extra={"standin": dataclasses.asdict(cfg), "metrics": metrics})


def cached_dir(cfg: StandInConfig) -> pathlib.Path | None:
  """The HF-layout folder of a previously trained stand-in, or None."""
  path = cache_path(cfg)
  return path if (path / "model.safetensors").exists() else None


def load_cached(cfg: StandInConfig):
  """(CLIPConfig, params) of a previously trained stand-in, or None."""
  path = cached_dir(cfg)
  return None if path is None else clip_io.load_hf_clip(path)


def zero_shot_accuracy(model: clip.CLIP, params, tok: CLIPTokenizer, data: toy_suite.ImageSet,
                       batch: int = 500) -> float:
  """Top-1 accuracy of ``"a photo of a {name}."`` prompts on a labelled set."""
  ids = jnp.asarray(tok([f"a photo of a {c}." for c in data.classnames]))
  txt = clip.normalize(model.apply({"params": params}, ids, method=clip.CLIP.encode_text))
  enc = jax.jit(lambda p, x: clip.normalize(
    model.apply({"params": p}, toy_suite.to_pixels(x), method=clip.CLIP.encode_image)))
  correct = 0
  for s in range(0, len(data.labels), batch):
    img = enc(params, jnp.asarray(data.images[s:s + batch]))
    correct += int(jnp.sum(jnp.argmax(img @ txt.T, -1) == data.labels[s:s + batch]))
  return correct / len(data.labels)


def train(cfg: StandInConfig, out_dir: pathlib.Path, checkpoints: bool = True,
          eval_limit: int = 1000):
  """Trains the stand-in (resuming from ``out_dir/checkpoints``), saves it to the cache.

  Returns:
    (CLIPConfig, params, metrics) with zero-shot accuracy per dataset in ``metrics``.
  """
  from jaxlab.core.checkpoint import Checkpointer
  from jaxlab.core.state import TrainState
  from jaxlab.core.train import fit, jit_step, make_step
  from jaxlab.data import BatchIterator

  out_dir = pathlib.Path(out_dir)
  tok = CLIPTokenizer(cfg.context)
  table, groups = caption_table(cfg, tok)
  pool = pretraining_pool(cfg, groups["offset"])
  ccfg = cfg.clip_config()
  model = clip.CLIP(ccfg)
  key = jax.random.key(cfg.seed)
  params = model.init(key, jnp.asarray(table[:2]), jnp.zeros((2, 32, 32, 3)))["params"]
  tx = optimizer(cfg)
  state = TrainState.create(params, tx)
  step = jit_step(make_step(make_loss(model, table, groups), tx))
  ckpt = Checkpointer(out_dir / "checkpoints") if checkpoints else None
  state = fit(step_fn=step, state=state, batches=BatchIterator(pool, cfg.batch, cfg.seed),
              key=jax.random.fold_in(key, 1), num_steps=cfg.steps, out_dir=out_dir,
              log_every=max(1, cfg.steps // 20), ckpt_every=max(1, cfg.steps // 4) if ckpt else 0,
              checkpointer=ckpt, desc="clip-pretrain")
  if ckpt is not None:
    ckpt.wait()
  evals = [n for d in cfg.datasets
           for n in (("shapes", "colours", "colour_shapes") if d == "shapes" else (d,))]
  metrics = {f"zero_shot/{name}": zero_shot_accuracy(
    model, state.params, tok, toy_suite.load(name, "test", limit=eval_limit)) for name in evals}
  save(cfg, state.params, metrics)
  return ccfg, jax.device_get(state.params), metrics


def get_or_train(cfg: StandInConfig, out_dir: pathlib.Path):
  """The cached stand-in for ``cfg`` if present, else trains (and caches) it."""
  cached = load_cached(cfg)
  if cached is not None:
    ccfg, params = cached
    with open(cache_path(cfg) / "config.json") as fh:
      metrics = json.load(fh).get("jaxlab", {}).get("metrics", {})
    return ccfg, params, {**metrics, "standin": "cached"}
  ccfg, params, metrics = train(cfg, pathlib.Path(out_dir) / "standin")
  return ccfg, params, {**metrics, "standin": "trained"}
