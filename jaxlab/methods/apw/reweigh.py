"""APW weight and multiplier updates, as released (che2198/APW @ 807d4b0), and K&C.

Subgroups g in the release's order: [(a=1,y=1), (a=1,y=0), (a=0,y=1), (a=0,y=0)],
so ``lam`` is always a [4] vector of multipliers. For equal opportunity only the
two positive subgroups carry multipliers (the release's lambda[Male],
lambda[Female]); the negative entries stay 1 and negatives get weight 1.

All functions are pure jnp and take hard predictions ``yhat`` and labels as
{0, 1} arrays.
"""

import jax
import jax.numpy as jnp

KINDS = ("eop", "eo", "dp")
GROUPS = ((1, 1), (1, 0), (0, 1), (0, 0))  # (a, y) per subgroup index


def subgroup(y: jax.Array, a: jax.Array) -> jax.Array:
  """Subgroup index [n] in 0..3 (see GROUPS)."""
  return 2 * (1 - a) + (1 - y)


def priority(p1: jax.Array, eta, float32_proba: bool = True) -> jax.Array:
  """u_i = exp(-eta |p_i - 1/2|) [n].

  Args:
    p1: P(y=1|x_i) [n].
    eta: priority temperature (a scalar; sweeps vmap over it).
    float32_proba: the release computes |P(y=0) - 1/2| on P(y=0) cast to float32
      (quirk, default on); off uses the full-precision probability.
  """
  p0 = 1.0 - p1
  if float32_proba:
    p0 = p0.astype(jnp.float32).astype(p1.dtype)
  return jnp.exp(-eta * jnp.abs(p0 - 0.5))


def sample_weights(kind: str, y, a, u, lam) -> jax.Array:
  """s_i = lam_g u_i |g| / sum_{j in g} u_j for i in subgroup g [n].

  Each subgroup keeps its mass |g| and is then scaled by its multiplier. For
  ``kind == "eop"`` negatives get weight 1 (as released).
  """
  g = subgroup(y, a)
  one = jax.nn.one_hot(g, 4, dtype=u.dtype)  # [n, 4]
  count = one.sum(0)
  usum = u @ one
  scale = lam * count / jnp.where(usum > 0, usum, 1.0)
  s = u * scale[g]
  if kind == "eop":
    s = jnp.where(y == 1, s, 1.0)
  return s


def multiplier_ratio(kind: str, yhat, y, a, alpha, dp_alpha_numerator_only: bool = True):
  """The multiplicative update r [4]; the release sets lam <- lam * r.

  eop/eo, positives:  (|P_a| sum_P yhat + alpha) / (|P| sum_{P_a} yhat + alpha)
  eo, negatives:      (|N_a| sum_N (1-yhat) + alpha) / (|N| sum_{N_a} (1-yhat) + alpha)
  dp, (a, y=1):       (|A_a| sum yhat + alpha) / (n sum_{A_a} yhat)
  dp, (a, y=0):       (|A_a| sum (1-yhat) + alpha) / (n sum_{A_a} (1-yhat))
  The DP alpha sits in the numerator only (quirk ``dp_alpha_numerator_only``);
  off adds it to the denominator too.
  """
  f = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
  yhat, y, a = yhat.astype(f), y.astype(f), a.astype(f)
  grp = jnp.stack([a, 1.0 - a])  # [2, n], a=1 first
  if kind in ("eop", "eo"):
    pos = ((grp * y) @ y * (y @ yhat) + alpha) / (y.sum() * ((grp * y) @ yhat) + alpha)
    ny, nyhat = 1.0 - y, 1.0 - yhat
    neg = ((grp * ny) @ ny * (ny @ nyhat) + alpha) / (ny.sum() * ((grp * ny) @ nyhat) + alpha)
    if kind == "eop":
      neg = jnp.ones_like(neg)
  elif kind == "dp":
    n = y.shape[0]
    size = grp.sum(1)
    den_alpha = 0.0 if dp_alpha_numerator_only else alpha
    pos = (size * yhat.sum() + alpha) / (n * (grp @ yhat) + den_alpha)
    neg = (size * (1.0 - yhat).sum() + alpha) / (n * (grp @ (1.0 - yhat)) + den_alpha)
  else:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  return jnp.stack([pos[0], neg[0], pos[1], neg[1]])


def kamiran_calders(y, a, base=None) -> jax.Array:
  """Kamiran & Calders reweighing W(a,y) = n_a n_y / (n n_{a,y}) per sample [n].

  Args:
    y, a: [n] in {0, 1}.
    base: optional [n] prior sample weights (counts are then weighted counts).
  """
  w = jnp.ones(y.shape, jnp.result_type(float)) if base is None else base
  g = subgroup(y, a)
  n_g = jax.ops.segment_sum(w, g, 4)
  n = n_g.sum()
  n_a = jnp.array([n_g[0] + n_g[1], n_g[0] + n_g[1], n_g[2] + n_g[3], n_g[2] + n_g[3]])
  n_y = jnp.array([n_g[0] + n_g[2], n_g[1] + n_g[3], n_g[0] + n_g[2], n_g[1] + n_g[3]])
  wg = n_a * n_y / (n * jnp.where(n_g > 0, n_g, 1.0))
  return w * wg[g]
