"""Entropic OT between feature sets (PLOT's Sinkhorn) with ott-jax, and a pure-JAX reference.

Cost ``1 - cos``, uniform marginals, epsilon 0.1 and a **fixed** number of iterations
(``min_iterations == max_iterations``), so a vmapped solve is a scan rather than a while loop
that waits for the slowest member (ott-jax issues #593, #371).

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

import jax
import jax.numpy as jnp

from jaxlab.core import errors

Array = jax.Array
GRAD_MODES = ("stopgrad", "unrolled", "implicit", "uniform")
SOLVERS = ("ott", "jax")


@dataclasses.dataclass(frozen=True, kw_only=True)
class OTConfig:
  """Sinkhorn settings. PLOT: epsilon 0.1, <= 100 iterations (we fix 100)."""
  epsilon: float = 0.1
  iterations: int = 100
  grad_mode: str = "stopgrad"
  solver: str = "ott"

  def __post_init__(self):
    if self.grad_mode not in GRAD_MODES:
      raise errors.ConfigError(f"ot grad_mode {self.grad_mode!r} is not one of {GRAD_MODES}")
    if self.solver not in SOLVERS:
      raise errors.ConfigError(f"ot solver {self.solver!r} is not one of {SOLVERS}")
    if self.epsilon <= 0 or self.iterations < 1:
      raise errors.ConfigError("ot epsilon must be > 0 and iterations >= 1")


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
  """An ott-jax Sinkhorn with a fixed iteration count."""
  from ott.solvers.linear import implicit_differentiation, sinkhorn
  implicit_diff = implicit_differentiation.ImplicitDiff() if implicit else None
  return sinkhorn.Sinkhorn(min_iterations=cfg.iterations, max_iterations=cfg.iterations,
                           implicit_diff=implicit_diff)


def ott_output(x: Array, y: Array, cfg: OTConfig, implicit: bool = False):
  """ott-jax Sinkhorn output for cost ``1 - cos(x_i, y_j)`` (x [M, d], y [N, d])."""
  from ott.geometry import costs, pointcloud
  from ott.problems.linear import linear_problem
  geom = pointcloud.PointCloud(x, y, cost_fn=costs.Cosine(), epsilon=cfg.epsilon)
  return ott_solver(cfg, implicit)(linear_problem.LinearProblem(geom))


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
  else:
    plan = sinkhorn_log(1.0 - cosine_sim(x, y), cfg.epsilon, cfg.iterations)
  return jax.lax.stop_gradient(plan) if cfg.grad_mode == "stopgrad" else plan


def ot_score(x: Array, y: Array, cfg: OTConfig) -> Array:
  """PLOT's similarity ``sum_ij T_ij cos(x_i, y_j)`` for sets x [M, d], y [N, d] -> []."""
  if cfg.grad_mode == "stopgrad":
    plan = transport_plan(jax.lax.stop_gradient(x), jax.lax.stop_gradient(y), cfg)
  else:
    plan = transport_plan(x, y, cfg)
  return jnp.sum(plan * cosine_sim(x, y))


def ot_logits(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> Array:
  """img_sets [B, M, d], txt_sets [K, N, d] -> OT similarities [B, K] (unscaled)."""
  per_class = jax.vmap(ot_score, in_axes=(None, 0, None))
  return jax.vmap(per_class, in_axes=(0, None, None))(img_sets, txt_sets, cfg)


def ot_distance(img_sets: Array, txt_sets: Array, cfg: OTConfig) -> Array:
  """Paired OT distances ``sum T (1 - cos)``: img_sets [B, M, d], txt_sets [B, N, d] -> [B]."""
  return 1.0 - jax.vmap(ot_score, in_axes=(0, 0, None))(img_sets, txt_sets, cfg)
