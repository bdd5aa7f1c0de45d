"""FedImpro as a ``jaxlab.federated.Plugin``: it runs on FedAvg, FedProx, SCAFFOLD, FedNova.

State layout (all arrays):

* server ``ext``: ``{"stats": FeatureStats [C, D], "counts": f32[K, C]}``; ``counts``
  are the clients' class sizes, read from the run's ``FedData.extra["class_counts"]``
  (per run in a sweep: each run has its own partition).
* swept scalars (``Plugin.hparams`` -> ``ServerState.hparams``):
  ``fake_weight_max_epochs``, ``upload_noise_std``, ``server_beta`` and, for
  ``estimator="as_coded"``, ``client_beta`` (beta_m).
* client ``ext`` carry: ``{"stats", "step", "epoch0", "spe", "w_max", "noise_key"}``
  (+ ``"beta"`` for ``as_coded``, + ``"base", "mom"`` for ``running``); the estimate
  starts from the global one (reference) or from the client's own row
  (``persistent_local_estimate``) and is updated after every local step.
* persistent row: ``{"stats", "seen"}`` when ``persistent_local_estimate`` else ``()``.
* upload ``ext``: ``{"stats": noised FeatureStats, "counts": f32[C]}``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import rng
from jaxlab.core.errors import ConfigError
from jaxlab.federated.types import ClientCarry, ClientMeta, Plugin, ServerState
from jaxlab.methods.fedimpro import estimator, fake, running
from jaxlab.methods.fedimpro import server as server_lib
from jaxlab.methods.fedimpro.config import FedImproConfig
from jaxlab.methods.fedimpro.estimator import FeatureStats
from jaxlab.methods.fedimpro.loss import fedimpro_loss
from jaxlab.methods.fedimpro.split import SplitModel, feature_dim

COUNTS = "class_counts"   # FedData.extra key: int[K, C] class sizes per client


def make_plugin(
  split: SplitModel,
  config: FedImproConfig,
  *,
  feature_shape: tuple[int, ...],
  num_classes: int,
  batch_size: int,
  local_epochs: int = 1,
) -> Plugin:
  """Builds the FedImpro plug-in.

  Args:
    split: the split classifier (its ``low``/``high`` must compose to the engine
      model's ``apply``).
    config: FedImproConfig.
    feature_shape: one example's split-feature shape (``split.feature_shape``).
    num_classes: C. The per-client class sizes int[K, C] come from the data
      (``FedData.extra["class_counts"]``, see ``class_counts``); their column sums are
      P_c, the class sizes that weight the count_ema estimator.
    batch_size: B, the real rows per local step (sets the number of fake rows).
    local_epochs: E; the schedule's epoch index is ``round * E + local epoch``.

  Returns:
    A Plugin for any ``jaxlab.federated.algorithms`` factory.
  """
  dim = feature_dim(feature_shape)
  n_fake = config.num_fake(batch_size, num_classes)
  # n_fake = C * (b // C + 1): the reference's tile(arange(C), b // C + 1).
  y_fake = jnp.tile(jnp.arange(num_classes, dtype=jnp.int32), n_fake // num_classes) if n_fake else None
  sched = config.fake_weight_sched
  rule = config.estimator
  hparams = config.hparams()
  if rule == "as_coded":
    beta = estimator.as_coded_beta(dim) if config.client_beta is None else config.client_beta
    hparams["client_beta"] = jnp.float32(beta)

  def server_init(key, data):
    counts = (data.extra if data is not None else {}).get(COUNTS)
    if counts is None or counts.ndim != 2 or counts.shape[1] != num_classes:
      raise ConfigError(
        f"FedImpro needs FedData.extra[{COUNTS!r}] = int[K, {num_classes}] class sizes per"
        " client; build the data with fedimpro.class_counts (make_fed_data(..., extra=...)"
        " or Sweep(..., extra=...))")
    stats = estimator.init_stats(key, num_classes, dim, config.sigma_init)
    return {"stats": stats, "counts": counts.astype(jnp.float32)}

  def persist_init(ext_server):
    if not config.persistent_local_estimate:
      return ()
    return {"stats": ext_server["stats"], "seen": jnp.zeros([], jnp.bool_)}

  def client_init(server: ServerState, row, meta: ClientMeta, key):
    stats = server.ext["stats"]
    if config.persistent_local_estimate:
      stats = jax.tree.map(lambda r, g: jnp.where(row["seen"], r, g), row["stats"], stats)
    spe = jnp.maximum((meta.n + batch_size - 1) // batch_size, 1).astype(jnp.int32)
    extra = {}
    if rule == "as_coded":
      extra["beta"] = server.hparams["client_beta"]
    if rule == "running":
      extra["base"], extra["mom"] = stats, running.init_moments(num_classes, dim)
    return {
      **extra,
      "stats": stats,
      "step": jnp.zeros([], jnp.int32),
      "epoch0": (server.round * local_epochs).astype(jnp.float32),
      "spe": spe,
      "w_max": server.hparams["fake_weight_max_epochs"],
      "class_total": server.ext["counts"].sum(0),
      "noise_key": jax.random.key_data(rng.purpose(key, rng.NOISE)),
    }

  def loss(params, model_state, ext, batch, key):
    epoch = ext["epoch0"] + jnp.minimum(ext["step"] // ext["spe"], local_epochs - 1)
    w = fake.fake_weight(epoch, ext["w_max"], sched)
    h_fake = None
    if n_fake:
      h_fake = fake.sample_fake(rng.purpose(key, rng.SAMPLE), ext["stats"], y_fake)
    value, (model_state, h_real, m) = fedimpro_loss(
      params, model_state, split, batch["x"], batch["y"], h_fake, y_fake, w, sched)
    ext = {**_update_estimate(ext, h_real, batch["y"]), "step": ext["step"] + 1}
    m = {k: v for k, v in m.items() if k != "loss"}
    return value, (model_state, ext, m)

  def _update_estimate(ext, h, y):
    if rule == "running":
      mom = running.merge_batch(ext["mom"], h, y)
      stats = running.to_stats(mom, ext["base"], config.sigma_clip)
      if config.std_mode != "update":  # fixed sigma: only the means are estimated
        stats = stats._replace(sigma=ext["base"].sigma)
      return {**ext, "mom": mom, "stats": stats}
    stats = estimator.update_stats(
      ext["stats"], h, y, ext["class_total"], rule=rule, beta=ext.get("beta"),
      update_sigma=config.std_mode == "update", sigma_clip=config.sigma_clip)
    return {**ext, "stats": stats}

  def client_final(server: ServerState, carry: ClientCarry, meta: ClientMeta):
    stats = carry.ext["stats"]
    key = jax.random.wrap_key_data(carry.ext["noise_key"])
    noised = server_lib.add_upload_noise(stats, key, server.hparams["upload_noise_std"])
    counts = server.ext["counts"].at[meta.id].get(mode="fill", fill_value=0)
    row = {"stats": stats, "seen": jnp.ones([], jnp.bool_)} if config.persistent_local_estimate else ()
    return {"stats": noised, "counts": counts}, row

  def server_update(server: ServerState, ups, weights, key):
    del key
    prev = server.ext["stats"]
    if config.server_estimate == "selected_uniform":
      new = server_lib.uniform_mean(ups["stats"], weights, prev)
    else:
      counts = ups["counts"] * (weights > 0)[:, None]
      rest = None
      if config.server_estimate == "all_label_size":
        rest = jnp.maximum(server.ext["counts"].sum(0) - counts.sum(0), 0.0)
      new = server_lib.label_size_mean(ups["stats"], counts, prev, rest)
    new = server_lib.ema(prev, new, server.hparams["server_beta"])
    metrics = {"fedimpro_sigma": new.sigma.mean(),
               "fedimpro_mu_shift": jnp.abs(new.mu - prev.mu).mean()}
    return {**server.ext, "stats": new}, metrics

  return Plugin(server_init, persist_init, client_init, loss, client_final, server_update,
                hparams=hparams)


def class_counts(labels: np.ndarray, num_classes: int) -> Callable[[list], dict]:
  """``parts -> {"class_counts": int32[K, C]}``: the data extras FedImpro reads.

  Use as ``make_fed_data(x, y, parts, extra=class_counts(y, C)(parts))`` or
  ``Sweep(..., extra=class_counts(y, C))`` (one count table per run's partition).
  """
  labels = np.asarray(labels)

  def extra(parts):
    counts = np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])
    return {COUNTS: counts.astype(np.int32)}

  return extra


__all__ = ["COUNTS", "FeatureStats", "class_counts", "make_plugin"]
