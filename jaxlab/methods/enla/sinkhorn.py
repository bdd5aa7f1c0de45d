"""Batched Sinkhorn for many small problems at once (PLOT's loop, vectorised over problems).

PLOT solves ``B x K`` tiny problems (49 x 4) per step. Per-iteration overhead, not arithmetic,
dominates, so this module runs **one** loop over all problems instead of a vmapped per-problem
solver, in a problems-last layout: a kernel or cost array ``[M, N, *P]``, scalings ``r [M, *P]``
and ``c [N, *P]``. The sums over ``m`` and ``n`` are written as sums of slices (``M + N``
elementwise terms), so each half-iteration is one elementwise loop over the contiguous problem
axis; XLA:CPU's reduce over a small axis is several times slower at these shapes.

* Kernel mode (PLOT's own loop): ``r = (1/M) / (K c)``, ``c = (1/N) / (K^T r)`` from ones.
* Log mode: the same iterates as potentials ``f = eps log r``, ``g = eps log c`` with
  log-sum-exp, safe for any epsilon.
* Stopping: ``"fixed"`` (exactly ``iterations``) or ``"plot"`` (PLOT's batch-wide rule: stop after
  the first iteration where ``mean |r - r_prev| < threshold`` over **all** problems, at most
  ``iterations``). PLOT's rule is evaluated on ``r`` in both modes.
"""

import math

import jax
import jax.numpy as jnp

Array = jax.Array
STOPS = ("fixed", "plot")
DOMAINS = ("auto", "kernel", "log")
# exp(-cost/eps) is safe when cost_max/eps stays far from the dtype's underflow (float32: e^-87).
KERNEL_SAFE_RATIO = {jnp.dtype(jnp.float32): 50.0, jnp.dtype(jnp.float64): 500.0}


def tree_sum(xs: list[Array]) -> Array:
  """Pairwise sum of a list of same-shaped arrays (one fused elementwise loop under jit)."""
  while len(xs) > 1:
    xs = [xs[i] + xs[i + 1] if i + 1 < len(xs) else xs[i] for i in range(0, len(xs), 2)]
  return xs[0]


def tree_max(xs: list[Array]) -> Array:
  while len(xs) > 1:
    xs = [jnp.maximum(xs[i], xs[i + 1]) if i + 1 < len(xs) else xs[i]
          for i in range(0, len(xs), 2)]
  return xs[0]


def pick_domain(domain: str, epsilon: float, cost_max: float, dtype) -> str:
  """``"auto"`` -> kernel mode when ``cost_max / epsilon`` is safe for ``dtype``, else log."""
  if domain != "auto":
    return domain
  limit = KERNEL_SAFE_RATIO.get(jnp.dtype(dtype), 50.0)
  return "kernel" if cost_max / epsilon <= limit else "log"


def _loop(update, init, const: Array, iterations: int, stop: str, threshold: float, unroll: int):
  """Runs ``update((r, c), const) -> ((r, c), err)``: the final state and the iteration count.

  ``const`` (the kernel) rides in the loop carry unchanged: otherwise XLA hoists its ``M + N``
  slices out of the loop as separate copies (50+ small ops per call).
  """
  if stop == "fixed":
    body = lambda _, s: (update(s[0], s[1])[0], s[1])
    state, _ = jax.lax.fori_loop(0, iterations, body, (init, const), unroll=unroll)
    return state, jnp.asarray(iterations, jnp.int32)

  def cond(carry):
    i, _, _, err = carry
    return (i < iterations) & ~(err < threshold)  # a NaN/inf error keeps iterating, as in PLOT

  def body(carry):
    i, s, k, _ = carry
    s, err = update(s, k)
    return i + 1, s, k, err

  i, state, _, _ = jax.lax.while_loop(cond, body, (jnp.asarray(0, jnp.int32), init, const,
                                                   jnp.asarray(jnp.inf, init[0].dtype)))
  return state, i


def kernel_sinkhorn(kmat: Array, *, iterations: int, stop: str = "fixed",
                    threshold: float = 1e-2, unroll: int = 1):
  """PLOT's kernel-mode loop on ``kmat [M, N, *P]``: returns ``(plan [M, N, *P], n_iter)``."""
  m, n = kmat.shape[:2]

  def update(rc, kk):
    r0, c = rc
    r = (1.0 / m) / tree_sum([kk[:, j] * c[j] for j in range(n)])
    c = (1.0 / n) / tree_sum([kk[i] * r[i] for i in range(m)])
    err = jnp.mean(jnp.abs(r - r0)) if stop == "plot" else None
    return (r, c), err

  p = kmat.shape[2:]
  init = (jnp.ones((m,) + p, kmat.dtype), jnp.ones((n,) + p, kmat.dtype))
  (r, c), it = _loop(update, init, kmat, iterations, stop, threshold, unroll)
  return r[:, None] * kmat * c[None], it


def log_sinkhorn(cost: Array, epsilon: float, *, iterations: int, stop: str = "fixed",
                 threshold: float = 1e-2, unroll: int = 1):
  """Log-domain form of the same iterates on ``cost [M, N, *P]``: ``(plan, n_iter)``.

  ``f = eps log r``, ``g = eps log c``; PLOT's stopping rule is evaluated on ``exp(f / eps)``.
  """
  m, n = cost.shape[:2]
  neg = -cost / epsilon

  def lse(terms):
    mx = jax.lax.stop_gradient(tree_max(terms))
    mx = jnp.where(jnp.isfinite(mx), mx, 0.0)
    return mx + jnp.log(tree_sum([jnp.exp(t - mx) for t in terms]))

  def update(fg, nc):
    f0, g = fg
    f = -epsilon * (math.log(m) + lse([nc[:, j] + g[j] / epsilon for j in range(n)]))
    g = -epsilon * (math.log(n) + lse([nc[i] + f[i] / epsilon for i in range(m)]))
    err = (jnp.mean(jnp.abs(jnp.exp(f / epsilon) - jnp.exp(f0 / epsilon)))
           if stop == "plot" else None)
    return (f, g), err

  p = cost.shape[2:]
  init = (jnp.zeros((m,) + p, cost.dtype), jnp.zeros((n,) + p, cost.dtype))
  (f, g), it = _loop(update, init, neg, iterations, stop, threshold, unroll)
  return jnp.exp(neg + (f[:, None] + g[None]) / epsilon), it


def solve(cost: Array, epsilon: float, *, iterations: int, stop: str = "fixed",
          threshold: float = 1e-2, domain: str = "auto", cost_max: float = 2.0, unroll: int = 1):
  """Uniform-marginal entropic OT for all problems in ``cost [M, N, *P]`` -> ``(plan, n_iter)``.

  ``cost_max`` bounds the cost (2 for ``1 - cos``) and picks the mode when ``domain="auto"``.
  """
  mode = pick_domain(domain, epsilon, cost_max, cost.dtype)
  if mode == "kernel":
    return kernel_sinkhorn(jnp.exp(-cost / epsilon), iterations=iterations, stop=stop,
                           threshold=threshold, unroll=unroll)
  return log_sinkhorn(cost, epsilon, iterations=iterations, stop=stop, threshold=threshold,
                      unroll=unroll)
