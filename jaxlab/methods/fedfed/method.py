"""Build "FedFed on <base algorithm>": phase 1 (distillation), the share, phase 2."""

from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import algorithms, plugins, schedule
from jaxlab.federated.types import FedAlgorithm, Model, Phase, Plugin, Sampler
from jaxlab.methods.fedfed import distill, losses, resample, share
from jaxlab.methods.fedfed.config import SIGMA1, SIGMA2, FedFedConfig
from jaxlab.methods.fedfed.vae import CVAE


class FedFed(NamedTuple):
  """What :func:`make` returns.

  Attributes:
    algorithm: phase 2: the base algorithm with the FedFed plug-in.
    plugin: its plug-in (loss on the 3B rows, noise hparams, ``phases``).
    model: the phase-2 classifier (a fresh model, not the VAE's g).
    sampler: phase-2 batches (raw + two class-balanced shared copies).
    phase: the distillation ``fl.Phase`` (its ``plugin`` field holds the phase-1
      FedAlgorithm; see ``distill``), with ``share.handoff``.
    phase_sampler: phase-1 batches (epoch_wrap over 3·E pass-epochs, [0, 1] images).
    vae: the CVAE module.
    pool: builds the shared pool once the VAE is handed off (``make_pool(rows)``).
  """
  algorithm: FedAlgorithm
  plugin: Plugin
  model: Model
  sampler: Sampler
  phase: Phase
  phase_sampler: Sampler
  vae: CVAE
  make_pool: Any


def extra_fn(y: np.ndarray, num_classes: int, cfg: FedFedConfig):
  """``partition -> {PROPERTY: int32[K]}`` (host client properties, ``Sweep(extra=...)``)."""
  def extra(parts):
    counts = np.stack([np.bincount(y[p], minlength=num_classes) for p in parts])
    n = np.array([len(p) for p in parts])
    return {distill.PROPERTY: losses.client_properties(n, counts, cfg.quantity_frac,
                                                       cfg.label_frac)}
  return extra


def make(module: Any, classifier: Any, *, config: FedFedConfig, sample_x: jax.Array,
         client_tx: optax.GradientTransformation, num_clients: int, num_classes: int,
         batch_size: int = 32, local_epochs: int = 1, base: str = "fedavg",
         preprocess=schedule.default_preprocess, **base_kwargs: Any) -> FedFed:
  """FedFed plugged into ``jaxlab.federated.algorithms.<base>``.

  Args:
    module: the phase-2 classifier (Linen, ``module(x, train=)``), trained fresh.
    classifier: the VAE's embedded classifier g (Linen).
    config: FedFedConfig.
    sample_x: [B, H, W, C] f32 images in [0, 1] (shapes).
    client_tx: phase-2 client optimizer (``client_sgd(0.01, 0.9, 1e-4)`` in the paper).
    num_clients, num_classes: K, C.
    batch_size: B of raw rows per phase-2 step (each copy adds B shared rows).
    local_epochs: phase-2 E.
    base: ``fedavg``, ``fedprox``, ``scaffold`` or ``fednova``.
    preprocess: uint8 rows -> [0, 1] images [B, H, W, C].
    **base_kwargs: to the base factory (e.g. ``mu``, ``persist_opt_state``).
  """
  if base not in algorithms.ALGORITHMS:
    raise ConfigError(f"base={base!r}; use one of {', '.join(algorithms.ALGORITHMS)}")
  if sample_x.ndim != 4:
    raise ConfigError(f"sample_x has shape {sample_x.shape}; pass images [B, H, W, C]")
  h, w, c = sample_x.shape[1:]
  if h % 4 or w % 4:
    raise ConfigError(f"image size {h}x{w}: the VAE needs H and W divisible by 4")
  vae = CVAE(width=config.vae_width, image_size=(h, w), channels=c, classifier=classifier,
             latent=config.vae_latent)
  model = Model.from_linen(module, sample_x)
  uniform = config.quirk_uniform_phase2_weights and base != "fednova"

  def work(n, extra, b, e):
    return (schedule.local_steps(n, b, e),
            np.ones(len(n), np.float32) if uniform else np.asarray(n, np.float32))

  phase_alg = distill.make_algorithm(vae, config, sample_x[: config.vae_batch])
  phase = Phase("distill", phase_alg, config.vae_rounds, config.vae_per_round,
                config.vae_local_epochs, share.handoff)
  plugin = plugins.supervised(model)._replace(
    hparams={SIGMA1: config.sigma1, SIGMA2: config.sigma2}, work=work, phases=(phase,))
  alg = algorithms.ALGORITHMS[base](model, client_tx, num_clients=num_clients, plugin=plugin,
                                    **base_kwargs)
  samp = resample.sampler(batch_size, local_epochs, num_classes, preprocess, config.crop_pad,
                          config.flip)
  phase_samp = schedule.epoch_wrap(config.vae_batch, 3 * config.vae_local_epochs, preprocess)
  return FedFed(alg, plugin, model, samp, phase, phase_samp, vae,
                lambda rows: share.make_pool(vae, config, rows, preprocess))

