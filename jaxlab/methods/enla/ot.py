"""Entropic OT between feature sets (PLOT's Sinkhorn): a batched solver, ott-jax, and a reference.

Cost ``1 - cos``, uniform marginals, epsilon 0.1. Solvers (``OTConfig.solver``):

* ``"batched"`` (default): one Sinkhorn loop over **all** ``B x K`` problems at once
  (``sinkhorn.py``), kernel mode when ``exp(-2/eps)`` is safe for the dtype (``domain="auto"``),
  log domain otherwise. ``ot_logits`` with ``grad_mode="stopgrad"`` is one fused function with a
  hand-written backward: three plain matrix products, no per-problem work. Fastest at every
  setting measured (``scripts/bench_sinkhorn.py``).
* ``"ott"``: ott-jax's ``Sinkhorn``, vmapped per problem, fixed iterations
  (``min_iterations == max_iterations``; a vmapped solve with a threshold waits for its slowest
  member, ott-jax issues #593, #371). ``ott_options`` passes ``lse_mode``, ``threshold``,
  ``inner_iterations``, ``recenter_potentials`` through.
* ``"jax"``: a 20-line vmapped log-domain reference (fixed iterations).

Stopping (``OTConfig.stop``, ``"batched"`` only besides the default): ``"fixed"`` runs exactly
``iterations``; ``"plot"`` is PLOT's batch-wide rule, stop after the first iteration where
``mean |r - r_prev| < threshold`` over all problems of the call, at most ``iterations``.

Differentiation modes (``OTConfig.grad_mode``):

* ``"stopgrad"`` (default, PLOT): the plan is computed under ``stop_gradient``; the gradient of
  ``sum(T * sim)`` is then Danskin's gradient of the entropic OT value.
* ``"unrolled"``: backprop through the fixed iterations (exact derivative of the truncated
  solver; memory grows with iterations).
* ``"implicit"``: ott's default ``ImplicitDiff()``; refused in float32 because its linear solve
  returns non-finite values at epsilon 0.05-0.1 (observed with ott-jax 0.6.0). We never pass
  ``ImplicitDiff(solver=...)``, which raises ``UnboundLocalError`` in ott-jax 0.6.0.
* ``"uniform"``: ablation, the plan is the uniform ``1 / (M N)`` (no Sinkhorn at all).
"""


import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from jaxlab.core import errors
from jaxlab.methods.enla import sinkhorn

Array = jax.Array
GRAD_MODES = ("stopgrad", "unrolled", "implicit", "uniform")
SOLVERS = ("batched", "ott", "jax")
OTT_OPTIONS = ("lse_mode", "threshold", "inner_iterations", "recenter_potentials")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OTConfig:
  """Sinkhorn settings. PLOT: epsilon 0.1, <= 100 iterations with an early stop at 1e-2."""
  epsilon: float = 0.1
  iterations: int = 100
  grad_mode: str = "stopgrad"
  solver: str = "batched"
  stop: str = "fixed"            # "fixed" | "plot" (PLOT's batch-wide early stop; batched only)
  threshold: float = 1e-2        # PLOT's threshold on mean |r - r_prev| (stop="plot")
  domain: str = "auto"           # batched: "auto" | "kernel" | "log"
  unroll: int = 1                # batched, stop="fixed": fori_loop unroll
  ott_options: tuple[tuple[str, Any], ...] = ()  # solver="ott": e.g. (("lse_mode", False),)

  def __post_init__(self):
    if self.grad_mode not in GRAD_MODES:
      raise errors.ConfigError(f"ot grad_mode {self.grad_mode!r} is not one of {GRAD_MODES}")
    if self.solver not in SOLVERS:
      raise errors.ConfigError(f"ot solver {self.solver!r} is not one of {SOLVERS}")
    if self.epsilon <= 0 or self.iterations < 1 or self.unroll < 1:
      raise errors.ConfigError("ot epsilon must be > 0, iterations >= 1 and unroll >= 1")
    if self.stop not in sinkhorn.STOPS:
      raise errors.ConfigError(f"ot stop {self.stop!r} is not one of {sinkhorn.STOPS}")
    if self.domain not in sinkhorn.DOMAINS:
      raise errors.ConfigError(f"ot domain {self.domain!r} is not one of {sinkhorn.DOMAINS}")
    if self.grad_mode == "implicit" and self.solver != "ott":
      raise errors.ConfigError("ot grad_mode='implicit' needs solver='ott'")
    if self.stop == "plot" and self.solver != "batched":
      raise errors.ConfigError("ot stop='plot' (batch-wide early stop) needs solver='batched'")
    if self.stop == "plot" and self.grad_mode == "unrolled":
      raise errors.ConfigError("ot grad_mode='unrolled' needs stop='fixed' (an early-stopped "
                               "loop cannot be differentiated in reverse mode)")
    # hashable however it arrived (a JSON round trip gives lists): cfg is a static jit argument
    object.__setattr__(self, "ott_options", tuple(tuple(kv) for kv in self.ott_options))
    bad = [k for k, _ in self.ott_options if k not in OTT_OPTIONS]
    if bad or (self.ott_options and self.solver != "ott"):
      got = [k for k, _ in self.ott_options]
      raise errors.ConfigError(f"ot ott_options takes keys {OTT_OPTIONS} with solver='ott'; "
                               f"got {got} with solver={self.solver!r}")


def cosine_sim(x: Array, y: Array) -> Array:
  """x [M, d], y [N, d] -> cosine similarities [M, N]."""
  x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
  y = y / jnp.linalg.norm(y, axis=-1, keepdims=True)
  return x @ y.T


def sinkhorn_log(cost: Array, epsilon: float, iterations: int) -> Array:
  """Pure-JAX log-domain Sinkhorn, uniform marginals, fixed iterations: cost [M, N] -> plan."""
  m, n = cost.shape
  log_a, log_b = -jnp.log(m), -jnp.log(n)

  def body(_, fg):
    f, g = fg
    g = -epsilon * jax.nn.logsumexp((f[:, None] - cost) / epsilon + log_a, axis=0)
    f = -epsilon * jax.nn.logsumexp((g[None, :] - cost) / epsilon + log_b, axis=1)
    return f, g

  f, g = jax.lax.fori_loop(0, iterations, body, (jnp.zeros(m, cost.dtype),
                                                 jnp.zeros(n, cost.dtype)))
  return jnp.exp((f[:, None] + g[None, :] - cost) / epsilon + log_a + log_b)


def ott_solver(cfg: OTConfig, implicit: bool = False):
  """An ott-jax Sinkhorn: fixed iterations unless ``ott_options`` sets a ``threshold``."""
  from ott.solvers.linear import implicit_differentiation, sinkhorn as ott_sinkhorn
  implicit_diff = implicit_differentiation.ImplicitDiff() if implicit else None
  opts = dict(cfg.ott_options)
  min_iterations = 0 if "threshold" in opts else cfg.iterations
  return ott_sinkhorn.Sinkhorn(min_iterations=min_iterations, max_iterations=cfg.iterations,
                               implicit_diff=implicit_diff, **opts)


def ott_output(x: Array, y: Array, cfg: OTConfig, implicit: bool = False):
  """ott-jax Sinkhorn output for cost ``1 - cos(x_i, y_j)`` (x [M, d], y [N, d])."""
  from ott.geometry import costs, pointcloud
  from ott.problems.linear import linear_problem
  geom = pointcloud.PointCloud(x, y, cost_fn=costs.Cosine(), epsilon=cfg.epsilon)
  return ott_solver(cfg, implicit)(linear_problem.LinearProblem(geom))


def _batched_plan(sim: Array, cfg: OTConfig) -> tuple[Array, Array]:
  """Plans for all problems in ``sim [M, N, *P]`` (problems last) and the iteration count."""
  m, n = sim.shape[:2]
  if cfg.grad_mode == "uniform":
    return jnp.full(sim.shape, 1.0 / (m * n), sim.dtype), jnp.asarray(0, jnp.int32)
  if cfg.grad_mode == "stopgrad":
    sim = jax.lax.stop_gradient(sim)
  return sinkhorn.solve(1.0 - sim, cfg.epsilon, iterations=cfg.iterations, stop=cfg.stop,
                        threshold=cfg.threshold, domain=cfg.domain, cost_max=2.0,
                        unroll=cfg.unroll)


def transport_plan(x: Array, y: Array, cfg: OTConfig) -> Array:
  """The plan T [M, N] between sets x [M, d] and y [N, d], differentiable per ``grad_mode``."""
  m, n = x.shape[0], y.shape[0]
  if cfg.grad_mode == "uniform":
    return jnp.full((m, n), 1.0 / (m * n), x.dtype)
  if cfg.grad_mode == "implicit":
    if x.dtype != jnp.float64:
      raise errors.ConfigError(
        "ot grad_mode='implicit' fails in float32 (ott-jax's linear solve returns non-finite "
        "values at epsilon<=0.1); enable jax_enable_x64 and pass float64 features, or use "
        "grad_mode='stopgrad' (PLOT) or 'unrolled'")
    if cfg.solver != "ott":
      raise errors.ConfigError("grad_mode='implicit' needs solver='ott'")
    return ott_output(x, y, cfg, implicit=True).matrix
  if cfg.solver == "ott":
    plan = ott_output(x, y, cfg).matrix
  elif cfg.solver == "jax":
    plan = sinkhorn_log(1.0 - cosine_sim(x, y), cfg.epsilon, cfg.iterations)
  else:
    plan = _batched_plan(cosine_sim(x, y)[:, :, None], cfg)[0][:, :, 0]
  return jax.lax.stop_gradient(plan) if cfg.grad_mode == "stopgrad" else plan


def ot_score(x: Array, y: Array, cfg: OTConfig) -> Array:
  """PLOT's similarity ``sum_ij T_ij cos(x_i, y_j)`` for sets x [M, d], y [N, d] -> []."""
  if cfg.grad_mode == "stopgrad":
    plan = transport_plan(jax.lax.stop_gradient(x), jax.lax.stop_gradient(y), cfg)
  else:
    plan = transport_plan(x, y, cfg)
  return jnp.sum(plan * cosine_sim(x, y))


def _normalize(x: Array) -> Array:
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def ot_plans(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> tuple[Array, Array]:
  """Batched solver's plans [B, K, M, N] for all pairs, and its iteration count (no gradient)."""
  sim = jnp.einsum("bmd,knd->mnbk", _normalize(img_sets), _normalize(txt_sets))
  plan, it = _batched_plan(jax.lax.stop_gradient(sim), dataclasses.replace(cfg,
                                                                           grad_mode="stopgrad"))
  return jnp.transpose(plan, (2, 3, 0, 1)), it


def _sum_mn(w: Array) -> Array:
  """Sum over the two leading axes of ``w [M, N, *P]`` as one matrix-vector product."""
  m, n = w.shape[:2]
  return (jnp.ones((m * n,), w.dtype) @ w.reshape(m * n, -1)).reshape(w.shape[2:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _logits_stopgrad(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> Array:
  return _logits_fwd(img_sets, txt_sets, cfg)[0]


def _logits_fwd(img_sets, txt_sets, cfg):
  (b, m, d), (k, n, _) = img_sets.shape, txt_sets.shape
  x, y = img_sets.reshape(b * m, d), txt_sets.reshape(k * n, d)
  nx, ny = jnp.linalg.norm(x, axis=-1), jnp.linalg.norm(y, axis=-1)
  sim_xy = (x @ y.T) / (nx[:, None] * ny[None, :])                     # [BM, KN]
  sim = jnp.transpose(sim_xy.reshape(b, m, k, n), (1, 3, 0, 2))       # [M, N, B, K]
  plan, _ = _batched_plan(sim, cfg)
  return _sum_mn(plan * sim), (x, y, nx, ny, plan, sim_xy)


def _rowsum(a: Array) -> Array:
  return a @ jnp.ones((a.shape[-1],), a.dtype)


def _logits_bwd(cfg, res, g):
  """Danskin's gradient (plan frozen) through the cosine, as three plain matrix products.

  With ``A = T * g`` as a [BM, KN] matrix: ``d/dx_i = (V_i - s_i x_i / |x_i|) / |x_i|`` where
  ``V = (A / |y|) @ y_hat`` and ``s_i = sum_j A_ij cos_ij``; likewise for y. ``s`` comes from the
  small [BM, KN] matrices, so the [BM, d] arrays are read and written once each.
  """
  del cfg
  x, y, nx, ny, plan, sim_xy = res
  m, n, b, k = plan.shape
  a = plan * g[None, None]
  a_xy = jnp.transpose(a, (2, 0, 3, 1)).reshape(b * m, k * n)          # [BM, KN]
  a_hat = a_xy / (nx[:, None] * ny[None, :])
  v = a_hat @ y                                                         # [BM, d]
  u = jax.lax.optimization_barrier(a_hat.T) @ x                        # [KN, d]
  w = a_xy * sim_xy                                                     # s_i, s_j: row/col sums
  dx = v - (_rowsum(w) / nx**2)[:, None] * x
  dy = u - ((jnp.ones((w.shape[0],), w.dtype) @ w) / ny**2)[:, None] * y
  return dx.reshape(b, m, -1), dy.reshape(k, n, -1)


_logits_stopgrad.defvjp(_logits_fwd, _logits_bwd)


def ot_logits(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> Array:
  """img_sets [B, M, d], txt_sets [K, N, d] -> OT similarities [B, K] (unscaled)."""
  if cfg.solver == "batched" and cfg.grad_mode == "stopgrad":
    return _logits_stopgrad(img_sets, txt_sets, cfg)
  if cfg.solver == "batched":
    sim = jnp.einsum("bmd,knd->mnbk", _normalize(img_sets), _normalize(txt_sets))
    return jnp.sum(_batched_plan(sim, cfg)[0] * sim, axis=(0, 1))
  per_class = jax.vmap(ot_score, in_axes=(None, 0, None))
  return jax.vmap(per_class, in_axes=(0, None, None))(img_sets, txt_sets, cfg)


def ot_distance(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> Array:
  """Paired OT distances ``sum T (1 - cos)``: img_sets [B, M, d], txt_sets [B, N, d] -> [B]."""
  if cfg.solver == "batched" and cfg.grad_mode != "implicit":
    sim = jnp.einsum("bmd,bnd->mnb", _normalize(img_sets), _normalize(txt_sets))
    return 1.0 - jnp.sum(_batched_plan(sim, cfg)[0] * sim, axis=(0, 1))
  return 1.0 - jax.vmap(ot_score, in_axes=(0, 0, None))(img_sets, txt_sets, cfg)
