"""Weighted L2 logistic regression with the optimum of scikit-learn's LogisticRegression.

Objective (sklearn's, a *sum* over samples; the intercept is not penalised):

  f(w, b) = 1/2 ||w||^2 + C * sum_i s_i * logloss(y_i, x_i . w + b)

solved by damped Newton with a FIXED number of steps, so a fit is a pure,
jit-able, vmap-able function. Each step solves the (d+1)x(d+1) Newton system by
Cholesky and takes the best of a fixed ladder of step sizes (1, 1/2, ..., 1/2^k),
which keeps it monotone when the weights are extreme. Run it in float64
(``jax.enable_x64``) to match sklearn's coefficients to 1e-4 and beyond.
"""

import jax
import jax.numpy as jnp

from jaxlab.core.errors import DataError

Params = tuple[jax.Array, jax.Array]  # (w [d], b [])


def logits(params: Params, x: jax.Array) -> jax.Array:
  """x [n, d] -> logits [n]."""
  w, b = params
  return x @ w + b


def predict_proba(params: Params, x: jax.Array) -> jax.Array:
  """P(y = 1 | x) [n]."""
  return jax.nn.sigmoid(logits(params, x))


def predict(params: Params, x: jax.Array) -> jax.Array:
  """Hard labels [n] int32, 1 iff the logit is > 0 (sklearn's ``predict``)."""
  return (logits(params, x) > 0).astype(jnp.int32)


def objective(params: Params, x: jax.Array, y: jax.Array, s: jax.Array, c) -> jax.Array:
  """1/2 ||w||^2 + C sum_i s_i logloss_i (a scalar)."""
  z = logits(params, x)
  loss = jnp.logaddexp(0.0, z) - y * z
  return 0.5 * jnp.sum(params[0] ** 2) + c * jnp.sum(s * loss)


def _gradient(params, x, y, s, c):
  """Gradient [d+1] of ``objective`` and the Newton curvature weights h [n]."""
  w, _ = params
  p = jax.nn.sigmoid(logits(params, x))
  r = c * s * (p - y)
  g = jnp.concatenate([w + x.T @ r, jnp.sum(r)[None]])
  return g, c * s * p * (1.0 - p)


def _hessian_factor(h, xh_dt):
  """Cholesky factor of the Hessian [d+1, d+1], formed from ``xh_dt`` (x, maybe float32)."""
  sq = jnp.sqrt(h).astype(xh_dt.dtype)
  z = jnp.concatenate([xh_dt * sq[:, None], sq[:, None]], axis=1)  # [n, d+1]
  reg = jnp.concatenate([jnp.ones(xh_dt.shape[1], z.dtype), jnp.zeros(1, z.dtype)])
  hess = z.T @ z + jnp.diag(reg)
  # A tiny ridge on the intercept keeps an all-zero-weight problem well posed.
  hess = hess.at[-1, -1].add(1e-12 * (1.0 + hess[-1, -1]))
  return jax.scipy.linalg.cho_factor(hess)


def _solve(chol, g):
  return jax.scipy.linalg.cho_solve(chol, g.astype(chol[0].dtype)).astype(g.dtype)


def fit(
  x: jax.Array,
  y: jax.Array,
  s: jax.Array,
  c: float | jax.Array = 1.0,
  *,
  steps: int = 12,
  init: Params | None = None,
  ladder: int = 6,
  hessian_dtype: str | None = None,
  refresh: int = 1,
) -> Params:
  """Minimises ``objective`` by ``steps`` damped Newton steps (pure; jit/vmap-able).

  Args:
    x: [n, d] features.  y: [n] labels in {0, 1}.  s: [n] non-negative weights.
    c: inverse regularisation strength C (sklearn's ``C``).
    steps: Newton steps (fixed; no data-dependent stopping).
    init: starting (w, b); zeros (sklearn's cold start) when None.
    ladder: step sizes tried per step: 1, 1/2, ..., 1/2^(ladder-1), and 0.
    hessian_dtype: dtype of the Hessian (e.g. "float32": 4-10x cheaper on CPU);
      gradient, objective and iterate stay in x's dtype, so the fixed point is
      the exact optimum and only the convergence rate changes. None: x's dtype.
    refresh: form the Hessian every ``refresh`` steps and reuse its factor in
      between (chord steps; the gradient is always fresh). 1 = plain Newton.
      ``steps`` is rounded up to a multiple of ``refresh``.

  Returns:
    (w [d], b []) in x's dtype.
  """
  dt = x.dtype
  y, s = y.astype(dt), s.astype(dt)
  if init is None:
    init = (jnp.zeros(x.shape[1], dt), jnp.zeros((), dt))
  sizes = jnp.concatenate([0.5 ** jnp.arange(ladder, dtype=dt), jnp.zeros(1, dt)])

  xh_dt = x if hessian_dtype is None else x.astype(hessian_dtype)

  def step(params, chol):
    g, _ = _gradient(params, x, y, s, c)
    d = _solve(chol, g)
    # Line search on the ladder: logits are affine in t, so two matvecs serve all sizes.
    z, dz = logits(params, x), x @ d[:-1] + d[-1]
    w, dw = params[0], d[:-1]

    def f(t):
      zt = z - t * dz
      loss = jnp.logaddexp(0.0, zt) - y * zt
      return 0.5 * jnp.sum((w - t * dw) ** 2) + c * jnp.sum(s * loss)

    fv = jax.vmap(f)(sizes)
    t = sizes[jnp.argmin(jnp.where(jnp.isfinite(fv), fv, jnp.inf))]
    return (w - t * dw, params[1] - t * d[-1])

  def outer(params, _):
    chol = _hessian_factor(_gradient(params, x, y, s, c)[1], xh_dt)
    params, _ = jax.lax.scan(lambda p, _: (step(p, chol), None), params, None,
                             length=refresh)
    return params, None

  params, _ = jax.lax.scan(outer, init, None, length=-(-steps // refresh))
  return params


def gradient_norm(params: Params, x, y, s, c=1.0) -> jax.Array:
  """Max-abs gradient of ``objective`` divided by C * sum(s) (sklearn's scale)."""
  g = jax.grad(objective)(params, x, y.astype(x.dtype), s.astype(x.dtype), c)
  gmax = jnp.maximum(jnp.max(jnp.abs(g[0])), jnp.abs(g[1]))
  return gmax / (c * jnp.sum(s))


def check_weights(s) -> None:
  """Host-side input check for sample weights.

  Raises:
    DataError: weights are negative, non-finite or all zero.
  """
  import numpy as np  # noqa: PLC0415

  s = np.asarray(s)
  if not np.all(np.isfinite(s)) or np.any(s < 0):
    raise DataError("sample weights must be finite and >= 0; fix or clip them")
  if not np.any(s > 0):
    raise DataError("sample weights are all zero: nothing to fit; give at least one "
                    "sample a positive weight")


def fit_checked(x, y, s, c: float = 1.0, *, steps: int = 12, x64: bool = True) -> Params:
  """``fit`` (jitted, float64 unless ``x64=False``) after host-side input checks.

  Raises:
    DataError: labels not binary 0/1; weights negative, non-finite or all zero.
  """
  from jaxlab.methods.apw.data import check_binary  # noqa: PLC0415

  check_weights(s)
  check_binary(y, "y")
  with jax.enable_x64(x64):
    f = jnp.result_type(float)
    return _fit_jit(jnp.asarray(x, f), jnp.asarray(y), jnp.asarray(s, f), c, steps=steps)


_fit_jit = jax.jit(fit, static_argnames=("steps", "ladder", "hessian_dtype", "refresh"))
