"""The four CoOp-family protocols on the toy suite, for any set of methods.

Each protocol trains every method with S seeds at once (per-seed k-shot sets of equal shape,
vmapped) and reports mean and std over seeds of top-1 accuracy (%).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.data import toy_suite
from jaxlab.methods.enla import learners, protocols, train
from jaxlab.methods.enla.config import PromptConfig
from jaxlab.models.clip import CLIP


class Backbone(NamedTuple):
  model: CLIP
  params: Any
  tok: Any
  to_pixels: Callable = toy_suite.to_pixels  # uint8 images -> normalised float pixels (in jit)


class Trained(NamedTuple):
  method: str
  learner: Any  # a Learner, or None for the linear probe
  params: Any  # stacked per-seed params (or the stacked probe)
  cfg: PromptConfig


def _stats(acc: np.ndarray) -> dict[str, float]:
  return {"mean": float(np.mean(acc)), "std": float(np.std(acc)),
          "seeds": [float(a) for a in np.atleast_1d(acc)]}


def _bank(bb: Backbone, names, cfg: PromptConfig) -> dict:
  return learners.make_bank(bb.model, bb.params, bb.tok, names, learners.bank_templates(cfg),
                            hidden=cfg.method == "enprompt" and cfg.enla_kind == "extra_block")


def _features(bb: Backbone, images: np.ndarray, batch: int = 500) -> jax.Array:
  enc = jax.jit(lambda x: bb.model.apply({"params": bb.params}, bb.to_pixels(x),
                                         method=CLIP.encode_image))
  flat = images.reshape((-1,) + images.shape[-3:])
  out = jnp.concatenate([enc(jnp.asarray(flat[s:s + batch]))
                         for s in range(0, len(flat), batch)])
  return out.reshape(images.shape[:-3] + out.shape[-1:])


def fit_method(bb: Backbone, cfg: PromptConfig, images: np.ndarray, labels: np.ndarray,
               names, out_dir: pathlib.Path, seed: int = 0) -> Trained:
  """Trains ``cfg.method`` on per-seed sets images [S, n, 32, 32, 3], labels [S, n]."""
  if cfg.method == "linear_probe":
    probe = train.linear_probe(_features(bb, images), jnp.asarray(labels), len(names))
    return Trained(cfg.method, None, probe, cfg)
  learner = learners.make_learner(bb.model, bb.params, bb.tok, cfg)
  if cfg.method == "zero_shot":
    return Trained(cfg.method, learner, {}, cfg)
  if cfg.steps == 0:  # the step-0 row: each seed's params at init, untrained
    keys = jax.random.split(jax.random.key(seed), labels.shape[0])
    return Trained(cfg.method, learner, jax.vmap(learner.init)(keys), cfg)
  state = train.train_prompts(learner, bb.params, images, labels, _bank(bb, names, cfg), cfg,
                              out_dir, seed=seed, desc=cfg.method, to_pixels=bb.to_pixels)
  return Trained(cfg.method, learner, state.params["learn"], cfg)


def eval_method(bb: Backbone, trained: Trained, data: toy_suite.ImageSet,
                same_classes: bool = True) -> dict[str, float] | None:
  """Accuracy stats on ``data`` (with its own class set); None where the method cannot."""
  if trained.learner is None:
    if not same_classes:
      return None
    return _stats(train.probe_accuracy(trained.params, _features(bb, data.images), data.labels))
  bank = _bank(bb, data.classnames, trained.cfg)
  return _stats(train.evaluate(trained.learner, bb.params, trained.params, data.images,
                               data.labels, bank, to_pixels=bb.to_pixels))


def _cached(run_dir: pathlib.Path, key: Any, compute: Callable[[], Any]) -> Any:
  """``compute()``, stored in ``run_dir`` under a hash of ``key``; a rerun (``--resume``, or the
  same out dir) reads it back, so an interrupted study restarts at the first unfinished run."""
  tag = hashlib.sha1(repr(key).encode()).hexdigest()[:10]
  path = pathlib.Path(run_dir) / f"eval-{tag}.json"
  if path.exists():
    return json.loads(path.read_text())
  out = compute()
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(out))
  return out


def _per_seed_shots(data: toy_suite.ImageSet, shots: int, seeds: int) -> tuple[np.ndarray, ...]:
  idx = np.stack([protocols.few_shot_indices(data.labels, shots, seed=s) for s in range(seeds)])
  return data.images[idx], data.labels[idx]


def _restrict(data: toy_suite.ImageSet, keep: np.ndarray) -> toy_suite.ImageSet:
  rows, rel = protocols.select_classes(data.labels, keep)
  return toy_suite.ImageSet(data.images[rows], rel, tuple(data.classnames[i] for i in keep))


def base_to_novel(bb: Backbone, name: str, methods: dict[str, PromptConfig], shots: int,
                  seeds: int, out_dir: pathlib.Path, train_limit: int = 5000,
                  test_limit: int = 1000, load: Callable = toy_suite.load) -> dict[str, Any]:
  """CoOp's base-to-novel protocol on one set: train on base, test base and novel.

  ``load(name, split, limit=, seed=) -> ImageSet`` defaults to ``jaxlab.data.toy_suite.load``.
  """
  tr = load(name, "train", limit=train_limit)
  te = load(name, "test", limit=test_limit, seed=1)
  base, novel = protocols.base_novel_split(tr.labels)
  tr_b, te_b, te_n = _restrict(tr, base), _restrict(te, base), _restrict(te, novel)
  images, labels = _per_seed_shots(tr_b, shots, seeds)
  out = {"base_classes": [int(c) for c in base], "novel_classes": [int(c) for c in novel]}
  for label, cfg in methods.items():
    run_dir = out_dir / f"b2n_{name}_{label}"

    def compute(cfg=cfg, run_dir=run_dir):
      trained = fit_method(bb, cfg, images, labels, tr_b.classnames, run_dir)
      b = eval_method(bb, trained, te_b)
      n = eval_method(bb, trained, te_n, same_classes=False)
      hm = protocols.harmonic_mean(b["mean"], n["mean"]) if n else None
      return {"base": b, "novel": n, "hm": hm}

    out[label] = _cached(run_dir, (cfg, shots, seeds, train_limit, test_limit), compute)
  return out


def few_shot(bb: Backbone, name: str, methods: dict[str, PromptConfig], shots_list, seeds: int,
             out_dir: pathlib.Path, train_limit: int = 5000,
             test_limit: int = 1000, load: Callable = toy_suite.load) -> dict[str, Any]:
  """All classes, k shots per class for each k; accuracy on the test split."""
  tr = load(name, "train", limit=train_limit)
  te = load(name, "test", limit=test_limit, seed=1)
  out: dict[str, Any] = {}
  for k in shots_list:
    images, labels = _per_seed_shots(tr, k, seeds)
    for label, cfg in methods.items():
      if cfg.method == "zero_shot" and k != shots_list[0]:
        out[label][str(k)] = out[label][str(shots_list[0])]
        continue
      run_dir = out_dir / f"fs_{name}_{k}_{label}"
      compute = lambda cfg=cfg, run_dir=run_dir: eval_method(
        bb, fit_method(bb, cfg, images, labels, tr.classnames, run_dir), te)
      out.setdefault(label, {})[str(k)] = _cached(
        run_dir, (cfg, k, seeds, train_limit, test_limit), compute)
  return out


def transfer(bb: Backbone, source: str, targets: dict[str, toy_suite.ImageSet],
             methods: dict[str, PromptConfig], shots: int, seeds: int, out_dir: pathlib.Path,
             same_classes: bool, train_limit: int = 5000,
             load: Callable = toy_suite.load) -> dict[str, Any]:
  """Train on ``source`` (all classes) and test on each target set (cross-dataset or shift)."""
  tr = load(source, "train", limit=train_limit)
  images, labels = _per_seed_shots(tr, shots, seeds)
  out: dict[str, Any] = {}
  for label, cfg in methods.items():
    run_dir = out_dir / f"tr_{source}_{label}_{'same' if same_classes else 'cross'}"

    def compute(cfg=cfg, run_dir=run_dir):
      trained = fit_method(bb, cfg, images, labels, tr.classnames, run_dir)
      return {t: eval_method(bb, trained, data, same_classes=same_classes)
              for t, data in targets.items()}

    out[label] = _cached(run_dir, (cfg, shots, seeds, train_limit, sorted(targets)), compute)
  return out


def domain_targets(name: str, corruptions, test_limit: int = 1000) -> dict[str, toy_suite.ImageSet]:
  """The clean test split of ``name`` and its corrupted copies (same labels)."""
  te = toy_suite.load(name, "test", limit=test_limit, seed=1)
  out = {"clean": te}
  for i, c in enumerate(corruptions):
    out[c] = dataclasses.replace(te, images=toy_suite.corrupt(te.images, c, seed=i))
  return out


def method_configs(base: PromptConfig, methods, ablations: dict[str, dict] | None = None
                   ) -> dict[str, PromptConfig]:
  """``{label: config}`` for the methods plus ablations (label -> overrides; the method is
  EnPrompt unless the overrides name one, e.g. a step-0 row ``{"method": "coop", "steps": 0}``).
  """
  out = {m: dataclasses.replace(base, method=m) for m in methods}
  for label, overrides in (ablations or {}).items():
    overrides = dict(overrides)
    ot_over = overrides.pop("ot", None)
    cfg = dataclasses.replace(base, **{"method": "enprompt", **overrides})
    if ot_over:
      cfg = dataclasses.replace(cfg, ot=dataclasses.replace(cfg.ot, **ot_over))
    out[label] = cfg
  return out
