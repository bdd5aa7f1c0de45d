"""Trigonometric-interpolation estimator of the unknown phase (reconstructed [R]).

For H = 1/2 sum_j P_j the response R(theta) = <psi(theta)| O |psi(theta)> is a
trigonometric polynomial of degree n <= N, fixed by its values at the 2n+1
nodes theta_j = 2 pi j / (2n+1). With S shots of a +-1 observable per node the
interpolant R_hat(theta) = sum_j R_hat_j D_n(theta - theta_j) (normalised
Dirichlet kernel) is inverted on a monotone branch: grid search, then a few
clipped Newton steps. Nothing of this is in the reference code; it follows
Huerta Alderete et al., "Inference-based quantum sensing" (arXiv:2206.09919,
id unverified [U]).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.methods.dqs import environments

OBSERVABLES = ("parity", "echo")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EstimatorConfig:
  """Estimator settings, every one reconstructed [R].

  Attributes:
    observable: "parity" (X^N, R = cos N theta for the Z GHZ probe) or "echo"
      (2|psi><psi| - 1, works for any probe).
    grid: grid points on the branch for the initial inversion.
    newton_steps: clipped Newton polish steps after the grid search.
    interior: the true theta is drawn uniformly from this central fraction of
      the branch (edge effects dominate near the extrema).
    reps: Monte-Carlo repetitions per shot count.
    postselect: count the heralding failures: of S shots sent through the
      setup only Binomial(S, P) coincidences arrive (P = the setup's
      post-selection probability), and the bounds use the QFI weighted by
      P, P F_Q. False (default): every shot is heralded, as for a textbook
      probe.
  """

  observable: str = "parity"
  grid: int = 2001
  newton_steps: int = 3
  interior: float = 0.8
  reps: int = 2000
  postselect: bool = False

  def __post_init__(self):
    if self.observable not in OBSERVABLES:
      raise ConfigError(f"observable={self.observable!r}; choose one of {OBSERVABLES}")
    if not 0 < self.interior <= 1 or self.reps < 1:
      raise ConfigError(f"need 0 < interior <= 1 and reps >= 1, got {self.interior}, {self.reps}")


def nodes(n: int) -> jax.Array:
  """[2n+1] calibration angles 2 pi j / (2n+1)."""
  return 2 * jnp.pi * jnp.arange(2 * n + 1) / (2 * n + 1)


def dirichlet(x: jax.Array, n: int) -> jax.Array:
  """Normalised Dirichlet kernel sin((2n+1)x/2) / ((2n+1) sin(x/2)), D(0) = 1."""
  s = jnp.sin(x / 2)
  small = jnp.abs(s) < 1e-9
  val = jnp.sin((2 * n + 1) * x / 2) / ((2 * n + 1) * jnp.where(small, 1.0, s))
  return jnp.where(small, 1.0, val)  # the kernel is 1 at every multiple of 2 pi


def interpolate(values: jax.Array, theta: jax.Array, n: int) -> jax.Array:
  """R_hat(theta) from [2n+1] node values; theta any shape."""
  d = dirichlet(theta[..., None] - nodes(n), n)
  return jnp.sum(d * values, -1)


def invert(values: jax.Array, r_meas: jax.Array, n: int, branch: tuple[float, float],
           cfg: EstimatorConfig) -> jax.Array:
  """theta_hat = argmin over the branch of |R_hat(theta) - r_meas|."""
  lo, hi = branch
  grid = jnp.linspace(lo, hi, cfg.grid)
  theta = grid[jnp.argmin(jnp.abs(interpolate(values, grid, n) - r_meas))]
  h = (hi - lo) / (cfg.grid - 1)
  f = lambda t: interpolate(values, t, n) - r_meas
  for _ in range(cfg.newton_steps):
    val, slope = jax.jvp(f, (theta,), (jnp.ones_like(theta),))
    step = jnp.clip(val / jnp.where(jnp.abs(slope) > 1e-12, slope, jnp.inf), -h, h)
    theta = jnp.clip(theta - step, lo, hi)
  return theta


def response_fn(psi: jax.Array, env: str, n: int, observable: str):
  """R(theta) for probe ``psi`` [2^N] under exp(-i theta H_env)."""
  if observable == "parity":
    def obs(phi):
      t = phi.reshape((2,) * n)
      for j in range(n):
        t = jnp.flip(t, axis=j)
      return t.reshape(-1)
  else:
    obs = lambda phi: 2 * jnp.vdot(psi, phi) * psi - phi

  def r(theta):
    phi = environments.evolve(psi, theta, env, n)
    return jnp.real(jnp.vdot(phi, obs(phi)))

  return jnp.vectorize(r)


def monotone_branch(response, n: int, points: int = 4001) -> tuple[float, float]:
  """[0, first extremum of R after 0]: where the noiseless response is monotone."""
  grid = np.linspace(0.0, 2 * np.pi, points)
  r = np.asarray(response(jnp.asarray(grid)))
  d = np.diff(r)
  sign = np.sign(d[np.abs(d) > 1e-12][0])
  turn = np.flatnonzero(np.sign(d) == -sign)
  hi = grid[turn[0]] if len(turn) else np.pi / n
  return 0.0, float(hi)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _invert_batch(r_nodes: jax.Array, r_meas: jax.Array, n: int, branch: tuple, cfg) -> jax.Array:
  """vmapped `invert`: [reps, 2n+1] node estimates, [reps] measurements -> [reps]."""
  return jax.vmap(invert, in_axes=(0, 0, None, None, None))(r_nodes, r_meas, n, branch, cfg)


def _shots(rng: np.random.Generator, p: np.ndarray, shots, success: float = 1.0) -> np.ndarray:
  """Mean of the heralded +-1 outcomes among ``shots`` attempts, P(+1) = p.

  Each attempt is heralded with probability ``success`` (post-selection);
  a block with no heralded shot reads 0 (no information). Exact binomial
  sampling.
  """
  p = np.clip(p, 0, 1)
  heralded = success < 1 - 1e-12
  k = rng.binomial(shots, success, size=p.shape) if heralded else np.full(p.shape, shots)
  return np.where(k > 0, 2 * rng.binomial(k, p) / np.maximum(k, 1) - 1, 0.0)


def total_shots(n: int, shots: int) -> int:
  """Shots one estimate spends: S at each of the 2n+1 nodes plus S at theta*."""
  return (2 * n + 2) * shots


def mse_vs_shots(seed: int | list[int], psi: jax.Array, env: str, n: int, shots: list[int],
                 cfg: EstimatorConfig, success_prob: float = 1.0) -> dict:
  """Monte-Carlo MSE of theta_hat for each shot count S (per node and at theta*).

  Shot noise is sampled exactly on the host (numpy binomial, seeded by
  ``seed``); the inversion of all repetitions is one jitted, vmapped call.

  Args:
    success_prob: the probe's post-selection probability P; used only when
      ``cfg.postselect``.

  Returns:
    dict with ``shots`` S; ``mse``; ``heisenberg`` = 1/(N^2 S) and ``sql`` =
    1/(N S) per measurement setting; ``shots_total`` = (2n+2) S, the whole
    budget of one estimate (calibration included) and ``heisenberg_total`` =
    1/(N^2 S_total); ``qfi`` F_Q of the probe, ``weight`` (P when
    ``cfg.postselect``, else 1) and ``crb`` = 1/(weight F_Q S), the
    Cramer-Rao bound of the S shots at theta*; ``branch``.
  """
  if not 0 < success_prob <= 1:
    raise ConfigError(f"success_prob={success_prob} must be in (0, 1]")
  weight = float(success_prob) if cfg.postselect else 1.0
  f_q = float(environments.qfi(psi, env, n))
  response = jax.jit(response_fn(psi, env, n, cfg.observable))
  branch = monotone_branch(response, n)
  lo, hi = branch
  margin = (1 - cfg.interior) / 2 * (hi - lo)
  rng = np.random.default_rng(seed)
  theta = rng.uniform(lo + margin, hi - margin, size=cfg.reps)
  p_nodes = (1 + np.asarray(response(nodes(n)))) / 2
  p_true = (1 + np.asarray(response(jnp.asarray(theta)))) / 2
  mse = []
  for s in shots:
    r_nodes = _shots(rng, np.broadcast_to(p_nodes, (cfg.reps, 2 * n + 1)), s, weight)
    r_meas = _shots(rng, p_true, s, weight)
    est = np.asarray(_invert_batch(jnp.asarray(r_nodes), jnp.asarray(r_meas), n, branch, cfg))
    mse.append(float(np.mean((est - theta) ** 2)))
  return {
    "shots": list(shots),
    "mse": mse,
    "heisenberg": [1 / (n**2 * s) for s in shots],
    "sql": [1 / (n * s) for s in shots],
    "shots_total": [total_shots(n, s) for s in shots],
    "heisenberg_total": [1 / (n**2 * total_shots(n, s)) for s in shots],
    "qfi": f_q,
    "weight": weight,
    "crb": [1 / (weight * f_q * s) if f_q > 0 else float("inf") for s in shots],
    "branch": list(branch),
  }
