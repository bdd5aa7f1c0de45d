"""A small diffusion learner with early stopping (the paper's v1 specialisation).

Reconstructed (the paper's exact model is unverified): an Ornstein-Uhlenbeck
forward process x_t = e^-t x_0 + sqrt(1 - e^-2t) eps, a one-hidden-layer
random-feature score network s(x, t) = (1/m) sum_k a_k relu(w_k . [x, phi(t)] + b_k)
with only ``a`` trained, denoising score matching (weight sigma_t^2), plain
gradient descent for ``tau`` steps (tau = the early-stopping time, a swept
scalar), and probability-flow ODE sampling. Because only ``a`` is trained the
DSM loss is quadratic in ``a``: its Gram matrix is formed once per fit and
each GD step is one [m, m] mat-vec.

Randomness: the random features (w, b) are the fixed network, drawn once from
``seed``. The training noise of a fit (diffusion times and Gaussian noise of the
DSM objective) and the noise behind its TV estimate come from the ``key`` that
`fit` receives, which the loops derive per (seed, generation, fit): every fit
draws fresh noise, and the same key reproduces it bit for bit.
"""

import jax
import jax.numpy as jnp

from jaxlab.core.errors import ConfigError
from jaxlab.methods.self_consuming.config import DiffusionOptions, Grid
from jaxlab.methods.self_consuming.distances import tv_samples_hist
from jaxlab.methods.self_consuming.learners import Learner, Rows, row_weights


def _sigma(t):
  return jnp.sqrt(1.0 - jnp.exp(-2.0 * t))


def _features(w, b, x, t):
  """[n, m] relu features of [x, log sigma_t]."""
  inp = jnp.concatenate([x, jnp.log(_sigma(t))[:, None]], -1)
  return jax.nn.relu(inp @ w + b)


def gd_eigh(gram: jax.Array, lin: jax.Array, tau: jax.Array) -> jax.Array:
  """``a`` after ``tau`` GD steps from 0 on ``a'Ga + 2a'lin`` (lr 1/(2 lambda_max)).

  Gradient descent on this quadratic has a closed form in the eigenbasis of the
  Gram matrix, so any early-stopping time tau costs one eigendecomposition.
  """
  lam, u = jnp.linalg.eigh(gram)
  lam = jnp.maximum(lam, 0.0)
  lr = 0.5 / jnp.maximum(lam[-1], 1e-12)
  shrink = 1.0 - (1.0 - 2.0 * lr * lam) ** tau            # [m]
  gain = jnp.where(lam > 1e-12 * lam[-1], shrink / jnp.maximum(lam, 1e-30), 2.0 * lr * tau)
  return -u @ (gain[:, None] * (u.T @ lin))


def gd_doubling(gram: jax.Array, lin: jax.Array, tau: jax.Array, bits: int,
                power_steps: int = 60) -> jax.Array:
  """The iterate of `gd_eigh` by binary powering, with matmuls only (no LAPACK call).

  a_tau = -2 lr S_tau lin with S_n = sum_{k<n} M^k and M = I - 2 lr G; over the bits
  of round(tau): S_{n+p} lin = S_n lin + M^n (S_p lin), S_2p lin = S_p lin + M^p S_p lin,
  M^2p = (M^p)^2. lambda_max (for lr) by power iteration from the all-ones vector (the
  Gram of non-negative relu features is entrywise non-negative, so it is not orthogonal to
  the top eigenvector); a slight underestimate keeps 2 lr lambda_max just above 1, stable.
  """
  m = gram.shape[0]
  v = jnp.ones((m,), gram.dtype) / jnp.sqrt(m)
  v = jax.lax.fori_loop(0, power_steps, lambda _, v: (w := gram @ v) / jnp.linalg.norm(w), v)
  lr = 0.5 / jnp.maximum(v @ gram @ v, 1e-12)
  step = jnp.eye(m, dtype=gram.dtype) - 2.0 * lr * gram
  n = jnp.round(tau).astype(jnp.int32)

  def body(carry, b):
    s_n, m_n, s_p, m_p = carry                              # S_n lin, M^n, S_p lin, M^p
    take = ((n >> b) & 1) == 1
    s_n = jnp.where(take, s_n + m_n @ s_p, s_n)
    m_n = jnp.where(take, m_n @ m_p, m_n)
    return (s_n, m_n, s_p + m_p @ s_p, m_p @ m_p), None

  init = (jnp.zeros_like(lin), jnp.eye(m, dtype=gram.dtype), lin, step)
  (s_n, *_), _ = jax.lax.scan(body, init, jnp.arange(bits))
  return -2.0 * lr * s_n


def diffusion(grid: Grid, dim: int, cfg: DiffusionOptions = DiffusionOptions(),
              seed: int = 0) -> Learner:
  """A Learner whose ``density`` is the model's mass per bin of ``grid``, divided by dx.

  ``cfg.tv_method="quantile"`` (default) pushes ``eval_samples`` quantiles of the
  start law through the probability-flow ODE and reads the bin masses off the
  interpolated CDF: deterministic, no finite-sample floor. ``"histogram"`` bins
  ``eval_samples`` random ODE samples (fresh per fit; biased up by the floor of
  `finite_sample_floor`).
  """
  if dim != 1:
    raise ConfigError("the diffusion learner's TV is implemented for 1-D data; use a 1-D Mixture")
  kw, kb = jax.random.split(jax.random.key(seed), 2)
  w = cfg.feature_scale * jax.random.normal(kw, (dim + 1, cfg.width))
  b = cfg.feature_scale * jax.random.uniform(kb, (cfg.width,), minval=-1.0, maxval=1.0)
  m = cfg.width

  def fit(key: jax.Array, x: jax.Array, rows: Rows, hp: dict) -> dict:
    kt, ke, kz = jax.random.split(key, 3)
    n = x.shape[0]
    xr = jnp.repeat(x, cfg.noise_draws, 0)
    wr = jnp.repeat(row_weights(n, rows), cfg.noise_draws, 0) / cfg.noise_draws
    t = jax.random.uniform(kt, (n * cfg.noise_draws,), minval=cfg.t_min, maxval=cfg.t_max)
    eps = jax.random.normal(ke, xr.shape)
    xt = jnp.exp(-t)[:, None] * xr + _sigma(t)[:, None] * eps
    g = _sigma(t)[:, None] * _features(w, b, xt, t) / m          # [M, m]
    gram = (g * wr[:, None]).T @ g                                # [m, m], weights sum to 1
    lin = (g * wr[:, None]).T @ eps                               # [m, d]
    tau = hp.get("tau", jnp.asarray(cfg.tau_max, jnp.float32))
    if cfg.solver == "doubling":
      a = gd_doubling(gram, lin, tau, cfg.doubling_bits)
    else:
      a = gd_eigh(gram, lin, tau)
    if cfg.tv_method == "quantile":
      return {"a": a}
    return {"a": a, "z_eval": jax.random.normal(kz, (cfg.eval_samples, dim))}

  def score(a, x, t):
    return _features(w, b, x, jnp.full(x.shape[:1], t)) @ a / m

  def ode(a, x):
    ts = jnp.linspace(cfg.t_max, cfg.t_min, cfg.ode_steps + 1)

    def step(x, i):
      t, dt = ts[i], ts[i] - ts[i + 1]
      return x + dt * (x + score(a, x, t)), None  # reverse of dx = -x dt + sqrt(2) dW

    x, _ = jax.lax.scan(step, x, jnp.arange(cfg.ode_steps))
    return x

  def sample(key, params, n):
    return ode(params["a"], jax.random.normal(key, (n, dim)))

  g = grid.size
  dx = (grid.hi - grid.lo) / g
  u = (jnp.arange(cfg.eval_samples) + 0.5) / cfg.eval_samples
  z_quant = jax.scipy.special.ndtri(u)[:, None]                  # N(0, 1) quantiles
  edges = grid.lo + jnp.arange(g + 1) * dx

  def density_quantile(params):
    # The flow map pushes the start law N(0, 1) forward; in 1-D its image of the
    # quantile z_k is the model's u_k-quantile (the map is monotone; sorting guards
    # Euler steps that cross). CDF at the bin edges by interpolation: no sampling noise.
    xs = jnp.sort(ode(params["a"], z_quant)[:, 0])
    cdf = jnp.interp(edges, xs, u, left=0.0, right=1.0)
    return jnp.diff(cdf) / dx

  def density_histogram(params):
    x = ode(params["a"], params["z_eval"])[:, 0]
    # histogram density at the grid's bin centres, as `tv_samples_hist` bins
    idx = jnp.clip(jnp.floor((x - grid.lo) / dx).astype(jnp.int32), 0, g - 1)
    inside = (x >= grid.lo) & (x < grid.hi)
    return jnp.zeros(g).at[idx].add(inside.astype(jnp.float32)) / (x.shape[0] * dx)

  if cfg.solver not in ("eigh", "doubling"):
    raise ConfigError(f"unknown diffusion solver {cfg.solver!r}; use 'eigh' or 'doubling'")
  if cfg.tv_method not in ("quantile", "histogram"):
    raise ConfigError(
      f"unknown diffusion tv_method {cfg.tv_method!r}; use 'quantile' or 'histogram'")
  density = density_quantile if cfg.tv_method == "quantile" else density_histogram
  return Learner(fit, sample, density)


def finite_sample_floor(key: jax.Array, sampler, density_fn, grid: Grid, n: int,
                        repeats: int = 20) -> jax.Array:
  """Mean histogram TV of ``n`` exact samples of p* against p*: the estimator's floor."""
  centres = grid.lo + (jnp.arange(grid.size) + 0.5) * (grid.hi - grid.lo) / grid.size
  dens = density_fn(centres[:, None])

  def one(k):
    return tv_samples_hist(sampler(k, n)[:, 0], dens, grid.lo, grid.hi)

  return jnp.mean(jax.vmap(one)(jax.random.split(key, repeats)))
