"""Head knockout (mean / zero / resample ablation) with random-k controls (spec e.5).

Each knockout is an ``Intervention`` whose only varying field is the ``[L, H]``
head mask, so a whole set of knockouts (top-k for several k plus random-k draws
over seeds) runs as one jitted ``lax.map`` over stacked masks.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.interp import metrics as metrics_lib
from jaxlab.models import decoder as dec

KINDS = ("mean", "zero", "resample")


@functools.partial(jax.jit, static_argnums=0, static_argnames=("per_position",))
def mean_z(cfg, params, ids, mask, *, per_position: bool = False) -> jax.Array:
  """Mean of each head's ``z`` over a reference set.

  Args:
    cfg: model config.
    params: decoder params.
    ids, mask: [b, t] left-padded reference prompts.
    per_position: keep positions aligned from the end ([L, t, H, d]) instead of
      pooling all real tokens ([L, H, d]).
  """
  _, acts = dec.apply(cfg, params, ids, mask, capture=dec.Capture(z=True))
  z = acts["z"].astype(jnp.float32)  # [L, b, t, H, d]
  w = mask.astype(jnp.float32)[None, :, :, None, None]
  if per_position:
    return jnp.sum(z * w, 1) / jnp.maximum(jnp.sum(w, 1), 1.0)
  return jnp.sum(z * w, (1, 2)) / jnp.maximum(jnp.sum(w, (1, 2)), 1.0)


def intervention(
  kind: str, head_mask: jax.Array, *, b: int, t: int, z_mean: jax.Array | None = None,
  z_other: jax.Array | None = None, last_only: bool = False,
) -> dec.Intervention:
  """The knockout of the heads in ``head_mask [L, H]``.

  Args:
    kind: "mean" (needs ``z_mean`` [L, H, d] or [L, t, H, d]), "zero", or
      "resample" (needs ``z_other`` [L, b, t, H, d], e.g. ``z`` of shuffled prompts).
    head_mask: [L, H] heads to knock out.
    b, t: batch shape.
    z_mean: mean activations from ``mean_z``.
    z_other: resampled activations.
    last_only: ablate only at the last position (default: all positions).
  """
  if kind not in KINDS:
    raise ConfigError(f"knockout kind {kind!r}; use one of {KINDS}.")
  pos = jnp.full((b,), t - 1, jnp.int32) if last_only else None
  if kind == "zero":
    if last_only:
      L, H = head_mask.shape
      return dec.Intervention(z_pos=pos, z_mask=head_mask, z_value=jnp.zeros((L, b, H, 1)))
    return dec.Intervention(z_scale=1.0 - head_mask.astype(jnp.float32))
  if kind == "mean":
    if z_mean is None:
      raise ConfigError("mean ablation needs z_mean (see knockout.mean_z).")
    if z_mean.ndim == 3:
      value = jnp.broadcast_to(z_mean[:, None], (z_mean.shape[0], b) + z_mean.shape[1:])
    else:
      value = jnp.broadcast_to(z_mean[:, None, -t:], (z_mean.shape[0], b, t) + z_mean.shape[2:])
    return dec.Intervention(z_pos=pos, z_mask=head_mask, z_value=value)
  if z_other is None:
    raise ConfigError("resample ablation needs z_other [L, b, t, H, d].")
  return dec.Intervention(z_pos=pos, z_mask=head_mask, z_value=z_other)


@functools.partial(jax.jit, static_argnums=0, static_argnames=("kind", "last_only", "chunk"))
def _sweep(cfg, params, ids, mask, targets, metric, masks, z_mean, z_other, *, kind, last_only,
           chunk):
  b, t = ids.shape

  def one(hm):
    iv = intervention(kind, hm, b=b, t=t, z_mean=z_mean, z_other=z_other, last_only=last_only)
    logits, _ = dec.apply(cfg, params, ids, mask, intervene=iv)
    last = logits[:, -1]
    correct = (jnp.argmax(last, -1) == targets).astype(jnp.float32)
    return correct, metric(last)

  return jax.lax.map(one, masks, batch_size=chunk)


def knockout_sweep(
  cfg: dec.DecoderConfig, params: dict, ids: jax.Array, mask: jax.Array, targets: jax.Array,
  metric: metrics_lib.Metric, head_masks: jax.Array, *, kind: str = "mean",
  z_mean: jax.Array | None = None, z_other: jax.Array | None = None, last_only: bool = False,
  chunk: int = 4,
) -> dict[str, np.ndarray]:
  """Evaluates many knockouts at once.

  Args:
    cfg, params: the model.
    ids, mask: [b, t] prompts; ``targets`` [b] the correct next token.
    metric: metric at the last position.
    head_masks: [n, L, H] one knockout per row (all-zero row = no ablation).
    kind, z_mean, z_other, last_only: see ``intervention``.
    chunk: knockouts evaluated together (memory bound).

  Returns:
    ``{"correct": [n, b] 0/1, "metric": [n, b]}`` as numpy arrays.
  """
  z_mean = jnp.zeros(()) if z_mean is None else z_mean
  z_other = jnp.zeros(()) if z_other is None else z_other
  correct, vals = _sweep(cfg, params, jnp.asarray(ids), jnp.asarray(mask),
                         jnp.asarray(targets), metric, jnp.asarray(head_masks, jnp.float32),
                         z_mean if kind == "mean" else None,
                         z_other if kind == "resample" else None,
                         kind=kind, last_only=last_only, chunk=chunk)
  return {"correct": np.asarray(correct), "metric": np.asarray(vals)}


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
  """[L, H] mask of the k most negative scores (SPT's ascending ``argsort``)."""
  scores = np.asarray(scores)
  flat = np.zeros(scores.size, np.float32)
  flat[np.argsort(scores.ravel(), kind="stable")[:k]] = 1
  return flat.reshape(scores.shape)


def random_k_masks(
  n_seeds: int, k: int, n_layers: int, n_heads: int, *, exclude: np.ndarray | None = None,
  seed: int = 0, match_layers: np.ndarray | None = None,
) -> np.ndarray:
  """[n_seeds, L, H] random-k controls; optionally avoiding ``exclude`` or matching layers.

  With ``match_layers`` ([L, H] mask, e.g. the top-k), each draw picks the same
  number of heads per layer as the mask holds (layer-matched control).
  """
  out = np.zeros((n_seeds, n_layers, n_heads), np.float32)
  banned = np.zeros((n_layers, n_heads), bool) if exclude is None else np.asarray(exclude, bool)
  for s in range(n_seeds):
    rng = np.random.default_rng(seed + s)
    if match_layers is not None:
      for layer, count in enumerate(np.asarray(match_layers, bool).sum(-1)):
        pool = np.flatnonzero(~banned[layer])
        pick = rng.choice(pool, size=min(int(count), pool.size), replace=False)
        out[s, layer, pick] = 1
    else:
      pool = np.flatnonzero(~banned.ravel())
      out[s].ravel()[rng.choice(pool, size=k, replace=False)] = 1
  return out


def mean_ci(values: np.ndarray, axis: int = 0, level: float = 0.95) -> tuple:
  """(mean, low, high): Student-t interval of the mean along ``axis``."""
  from scipy import stats  # noqa: PLC0415 (heavy import, only here)

  values = np.asarray(values, np.float64)
  n = values.shape[axis]
  mean = values.mean(axis)
  if n < 2:
    return mean, mean, mean
  half = stats.t.ppf(0.5 + level / 2, n - 1) * values.std(axis, ddof=1) / np.sqrt(n)
  return mean, mean - half, mean + half
