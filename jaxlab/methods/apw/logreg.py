"""Weighted L2 logistic regression with the optimum of scikit-learn's LogisticRegression.

Objective (sklearn's, a *sum* over samples; the intercept is not penalised):

  f(w, b) = 1/2 ||w||^2 + C * sum_i s_i * logloss(y_i, x_i . w + b)

solved by damped Newton with a FIXED number of steps, so a fit is a pure,
jit-able, vmap-able function. Each step solves the (d+1)x(d+1) Newton system by
Cholesky and takes the best of a fixed ladder of step sizes (1, 1/2, ..., 1/2^k),
which keeps it monotone when the weights are extreme. Run it in float64
(``jax.enable_x64``) to match sklearn's coefficients to 1e-4 and beyond.

``fit_cg`` is the same damped Newton for many weight vectors at once: each
direction comes from a few preconditioned conjugate-gradient steps (two
matvecs each) instead of forming the Hessian X^T diag(h) X, which costs
n d^2 per weight vector. The preconditioner is ``Precond``: the rows are cut
into equal chunks of similar curvature once, each chunk's Gram sum r z z^T
(z = [x, 1], r a reference curvature) is formed once and shared by every weight
vector, and a weight vector's Hessian is approximated by sum_b rho_b Gram_b + I
with rho_b its curvature over the reference on chunk b. Only the speed depends
on the chunking; the fixed point is the same optimum (the gradient is exact).
"""

from typing import NamedTuple

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


def _ladder_step(params, d, x, y, s, c, sizes) -> Params:
  """params - t d for the t in ``sizes`` with the lowest finite objective.

  Logits are affine in t, so two matvecs serve all sizes; size 0 keeps params.
  """
  z, dz = logits(params, x), x @ d[:-1] + d[-1]
  w, dw = params[0], d[:-1]

  def f(t):
    zt = z - t * dz
    loss = jnp.logaddexp(0.0, zt) - y * zt
    return 0.5 * jnp.sum((w - t * dw) ** 2) + c * jnp.sum(s * loss)

  fv = jax.vmap(f)(sizes)
  t = sizes[jnp.argmin(jnp.where(jnp.isfinite(fv), fv, jnp.inf))]
  return (w - t * dw, params[1] - t * d[-1])


def _cast_and_start(x: jax.Array, y: jax.Array, s: jax.Array, init):
  """Labels and weights in x's dtype, and the start (zeros when ``init`` is None)."""
  dt = x.dtype
  if init is None:
    init = (jnp.zeros(x.shape[1], dt), jnp.zeros((), dt))
  return y.astype(dt), s.astype(dt), init


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
  y, s, init = _cast_and_start(x, y, s, init)
  sizes = jnp.concatenate([0.5 ** jnp.arange(ladder, dtype=dt), jnp.zeros(1, dt)])

  xh_dt = x if hessian_dtype is None else x.astype(hessian_dtype)

  def step(params, chol):
    g, _ = _gradient(params, x, y, s, c)
    return _ladder_step(params, _solve(chol, g), x, y, s, c, sizes)

  def outer(params, _):
    chol = _hessian_factor(_gradient(params, x, y, s, c)[1], xh_dt)
    params, _ = jax.lax.scan(lambda p, _: (step(p, chol), None), params, None,
                             length=refresh)
    return params, None

  params, _ = jax.lax.scan(outer, init, None, length=-(-steps // refresh))
  return params


class Precond(NamedTuple):
  """The shared part of the chunked-Gram preconditioner (arrays only; see ``precondition``).

  Attributes:
    gram: [B, d+1, d+1] sum over each chunk of r_i z_i z_i^T, z = [x, 1], in the CG dtype.
    ref: [B] sum over each chunk of the reference curvatures r_i.
    rows: [B, m] int, the rows of each chunk; n marks an empty (padding) slot.
    x_lo: [n, d] x in the CG dtype, for the Hessian-vector products.
  """

  gram: jax.Array
  ref: jax.Array
  rows: jax.Array
  x_lo: jax.Array


def precondition(x: jax.Array, keys, ref: jax.Array, chunks: int = 64, dtype=None) -> Precond:
  """Sorts the rows by ``keys`` (``jnp.lexsort`` order: the last key is primary), cuts
  them into ``chunks`` equal chunks (the last padded) and forms each chunk's Gram
  weighted by the reference curvatures ``ref`` [n] (> 0).

  Costs one Gram of x (n d^2), however many weight vectors share it. Rows whose
  curvature h_i keeps a similar ratio h_i / ref_i should share a chunk, e.g.
  ref = sigmoid'(logit) and keys (|logit|, subgroup).
  """
  n, d = x.shape
  x_lo = x if dtype is None else x.astype(dtype)
  m = -(-n // chunks)
  rows = jnp.concatenate([jnp.lexsort(keys).astype(jnp.int32),
                          jnp.full(chunks * m - n, n, jnp.int32)]).reshape(chunks, m)
  r = jnp.concatenate([ref, jnp.zeros(1, ref.dtype)])[rows].astype(x_lo.dtype)  # [B, m]
  z = jnp.concatenate([x_lo, jnp.ones((n, 1), x_lo.dtype)], axis=1)
  z = jnp.concatenate([z, jnp.zeros((1, d + 1), z.dtype)])[rows]  # [B, m, d+1]
  return Precond(jnp.einsum("bmi,bm,bmj->bij", z, r, z), r.sum(1), rows, x_lo)


def approx_hessian(pc: Precond, h: jax.Array) -> jax.Array:
  """sum_b rho_b Gram_b + diag(1, ..., 1, 0) [d+1, d+1], rho_b = sum_{i in b} h_i / sum_{i in b} r_i:
  the Hessian of ``objective`` with h_i replaced by rho_b r_i on each chunk (exact, up
  to a 1e-6 relative ridge on the intercept, where h is proportional to the reference
  curvature on every chunk)."""
  hp = jnp.concatenate([h, jnp.zeros(1, h.dtype)])[pc.rows]
  dt = pc.gram.dtype
  rho = hp.sum(1).astype(dt) / jnp.where(pc.ref > 0, pc.ref, 1.0)
  reg = jnp.concatenate([jnp.ones(pc.gram.shape[-1] - 1, dt), jnp.zeros(1, dt)])
  m = jnp.einsum("b,bij->ij", rho, pc.gram) + jnp.diag(reg)
  return m.at[-1, -1].add(1e-6 * (1.0 + m[-1, -1]))  # keeps it definite if every h_i = 0


def _pcg(hv, chol, g, iters: int):
  """``iters`` steps of preconditioned CG on H d = g from d = 0 (fixed count)."""
  def body(carry, _):
    d, r, p, rz = carry
    hp = hv(p)
    php = p @ hp
    a = jnp.where(php > 0, rz / jnp.where(php > 0, php, 1.0), 0.0)
    d, r = d + a * p, r - a * hp
    z = jax.scipy.linalg.cho_solve(chol, r)
    rz_new = r @ z
    beta = jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1.0), 0.0)
    return (d, r, z + beta * p, rz_new), None

  z0 = jax.scipy.linalg.cho_solve(chol, g)
  (d, *_), _ = jax.lax.scan(body, (jnp.zeros_like(g), g, z0, g @ z0), None, length=iters)
  return d


def _cg_solve(g, h, pc: Precond, cg_iters: int) -> jax.Array:
  """H^-1 g by ``cg_iters`` preconditioned CG steps in ``pc``'s dtype (g's dtype out)."""
  xl = pc.x_lo
  hl = h.astype(xl.dtype)

  def hv(v):  # exact Hessian-vector product (in the CG dtype), tiny intercept ridge
    u = hl * (xl @ v[:-1] + v[-1])
    return jnp.concatenate([v[:-1] + xl.T @ u, (jnp.sum(u) + 1e-12 * v[-1])[None]])

  chol = jax.scipy.linalg.cho_factor(approx_hessian(pc, h))
  return _pcg(hv, chol, g.astype(xl.dtype), cg_iters).astype(g.dtype)


def cg_direction(params: Params, x, y, s, c, pc: Precond, cg_iters: int) -> jax.Array:
  """The Newton direction H^-1 g [d+1] of ``objective`` at ``params`` by ``cg_iters``
  steps of CG preconditioned by ``approx_hessian(pc, h)``, in ``pc``'s dtype; x's dtype
  out. ``y``, ``s`` in x's dtype."""
  g, h = _gradient(params, x, y, s, c)
  return _cg_solve(g, h, pc, cg_iters)


def fit_cg(
  x: jax.Array,
  y: jax.Array,
  s: jax.Array,
  c: float | jax.Array = 1.0,
  *,
  pc: Precond,
  steps: int = 4,
  cg_iters: int = 8,
  init: Params | None = None,
  halvings: int = 6,
) -> Params:
  """Minimises ``objective`` by ``steps`` damped Newton steps whose directions come
  from ``cg_iters`` steps of CG preconditioned by ``approx_hessian(pc, h)`` (pure;
  jit/vmap-able; share ``pc`` across a vmap over weight vectors).

  Gradient, objective and iterate stay in x's dtype, so the fixed point is the
  exact optimum; the CG runs in ``pc``'s dtype and only sets the convergence rate
  (check it with ``gradient_norm``). Each step takes the full step t = 1 unless
  it raises the objective, then halves t (at most ``halvings`` times; else t = 0):
  near the optimum that is one objective evaluation per step, where ``fit``'s
  ladder evaluates them all. The logits are carried (z <- z - t dz), so a step
  costs two matvecs in x's dtype besides the CG's.

  Args:
    x: [n, d] features.  y: [n] labels in {0, 1}.  s: [n] non-negative weights.
    c: sklearn's C.  pc: ``precondition(x, ...)``.  steps: Newton steps (fixed).
    cg_iters: CG steps per Newton step (fixed).  init: start (zeros when None).
    halvings: most step halvings per Newton step.

  Returns:
    (w [d], b []) in x's dtype.
  """
  dt = x.dtype
  y, s, init = _cast_and_start(x, y, s, init)

  def obj(w, z):
    return 0.5 * jnp.sum(w ** 2) + c * jnp.sum(s * (jnp.logaddexp(0.0, z) - y * z))

  def step(carry, _):
    (w, b), z, f = carry
    p = jax.nn.sigmoid(z)
    r = c * s * (p - y)
    g = jnp.concatenate([w + x.T @ r, jnp.sum(r)[None]])
    d = _cg_solve(g, c * s * p * (1.0 - p), pc, cg_iters)
    dw, dz = d[:-1], x @ d[:-1] + d[-1]
    tol = 1e-12 * (1.0 + jnp.abs(f))  # rounding of f: a converged step is still taken

    def worse(st):
      t, ft, k = st
      return ((ft > f + tol) | ~jnp.isfinite(ft)) & (k <= halvings)

    def halve(st):
      t, _, k = st
      t = jnp.where(k < halvings, 0.5 * t, 0.0)
      return t, obj(w - t * dw, z - t * dz), k + 1

    t, ft, _ = jax.lax.while_loop(worse, halve, (jnp.ones((), dt), obj(w - dw, z - dz), 0))
    ft = jnp.where(t > 0, ft, f)
    return ((w - t * dw, b - t * d[-1]), z - t * dz, ft), None

  z0 = logits(init, x)
  (params, _, _), _ = jax.lax.scan(step, (init, z0, obj(init[0], z0)), None, length=steps)
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
