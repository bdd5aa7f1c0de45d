"""Twin-sight's losses as pure functions (spec federated.md §5.4).

All inputs are per-step arrays of one client; nothing here knows about rounds.
"""

import jax
import jax.numpy as jnp
import optax


def l2_normalise(z: jax.Array, eps: float = 1e-12) -> jax.Array:
  """Rows of ``z`` [B, d] scaled to unit L2 norm (PyTorch ``F.normalize``).

  ``sqrt(max(|z|^2, eps^2))`` has the value of ``max(|z|, eps)`` and a zero (not NaN)
  gradient at an all-zero row (e.g. a dead ReLU feature vector).
  """
  sq = jnp.sum(jnp.square(z), axis=-1, keepdims=True)
  return z / jnp.sqrt(jnp.maximum(sq, eps * eps))


def np_normaliser(batch: int, xor: jax.typing.ArrayLike) -> jax.Array:
  """The NP loss divisor: ``B**2``, or the reference's Python ``B ^ 2`` (bitwise XOR,
  66 for B = 64) where ``xor`` > 0.5 (a swept 0/1 scalar)."""
  return jnp.where(jnp.asarray(xor) > 0.5, float(batch ^ 2), float(batch * batch))


def np_loss(feat_u: jax.Array, feat_s: jax.Array, xor: jax.typing.ArrayLike = 0.0) -> jax.Array:
  """Neighbourhood preservation: ``sum_ij (G_u - G_s)_ij^2 / norm``.

  Args:
    feat_u: [B, d_u] backbone features of the self-supervised model (weak view).
    feat_s: [B, d_s] backbone features of the supervised model (weak view).
    xor: 1 for the reference's ``B ^ 2`` normaliser, 0 for ``B**2``.

  Both models get gradients (no stop-gradient), as in the reference.
  """
  zu, zs = l2_normalise(feat_u), l2_normalise(feat_s)
  diff = zu @ zu.T - zs @ zs.T
  return jnp.sum(jnp.square(diff)) / np_normaliser(feat_u.shape[0], xor)


def nt_xent(p1: jax.Array, p2: jax.Array, tau: float = 0.07) -> jax.Array:
  """SimCLR NT-Xent over 2B anchors; the positive of row i is its other view.

  Args:
    p1, p2: [B, d] projections of the two views (normalised here).
    tau: temperature.
  """
  b = p1.shape[0]
  z = l2_normalise(jnp.concatenate([p1, p2]))
  logits = z @ z.T / tau
  logits = jnp.where(jnp.eye(2 * b, dtype=bool), -1e9, logits)   # self excluded
  pos = jnp.concatenate([jnp.arange(b, 2 * b), jnp.arange(b)])
  return optax.softmax_cross_entropy_with_integer_labels(logits, pos).mean()


def byol_loss(pred: jax.Array, target: jax.Array) -> jax.Array:
  """BYOL regression ``2 - 2 cos(pred, sg(target))``, averaged over rows."""
  t = jax.lax.stop_gradient(l2_normalise(target))
  return jnp.mean(2.0 - 2.0 * jnp.sum(l2_normalise(pred) * t, -1))


def freematch_init(num_classes: int) -> dict:
  """FreeMatch EMA state: global confidence 1/C and a uniform class model."""
  return {"time_p": jnp.full([], 1.0 / num_classes, jnp.float32),
          "p_model": jnp.full([num_classes], 1.0 / num_classes, jnp.float32)}


def freematch_update(state: dict, probs: jax.Array, ema: float = 0.999) -> dict:
  """One EMA update from the weak-view probabilities ``probs`` [B, C] (no gradient)."""
  probs = jax.lax.stop_gradient(probs)
  return {"time_p": ema * state["time_p"] + (1 - ema) * probs.max(-1).mean(),
          "p_model": ema * state["p_model"] + (1 - ema) * probs.mean(0)}


def freematch_thresholds(state: dict) -> jax.Array:
  """Self-adaptive class thresholds ``time_p * p_model[c] / max(p_model)`` [C]."""
  return state["time_p"] * state["p_model"] / state["p_model"].max()


def freematch_mask(state: dict, probs: jax.Array) -> jax.Array:
  """f32[B]: 1 where the max probability reaches its class's threshold."""
  thr = freematch_thresholds(state)[probs.argmax(-1)]
  return (probs.max(-1) >= thr).astype(jnp.float32)


def fixmatch_mask(probs: jax.Array, threshold: float = 0.95) -> jax.Array:
  """f32[B]: 1 where the max probability is at least ``threshold``."""
  return (probs.max(-1) >= threshold).astype(jnp.float32)


def pseudo_label_loss(logits_weak: jax.Array, logits_strong: jax.Array, mask: jax.Array
                      ) -> jax.Array:
  """``mean(mask * CE(logits_strong, argmax(logits_weak)))`` with hard labels."""
  y_hat = jax.lax.stop_gradient(logits_weak).argmax(-1)
  ce = optax.softmax_cross_entropy_with_integer_labels(logits_strong, y_hat)
  return jnp.mean(jax.lax.stop_gradient(mask) * ce)


def pseudo_step(logits_w: jax.Array, logits_s: jax.Array, state: dict, *, method: str,
                ema: float, threshold: float) -> tuple[jax.Array, dict, dict]:
  """FreeMatch or FixMatch on one unlabeled batch.

  Returns:
    (loss, new FreeMatch state (unchanged for FixMatch), metrics).
  """
  probs = jax.nn.softmax(jax.lax.stop_gradient(logits_w))
  if method == "freematch":
    state = freematch_update(state, probs, ema)
    mask = freematch_mask(state, probs)
  else:
    mask = fixmatch_mask(probs, threshold)
  return pseudo_label_loss(logits_w, logits_s, mask), state, {"mask_rate": mask.mean()}
