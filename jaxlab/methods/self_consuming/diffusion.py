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
    # Gradient descent from a = 0 on this quadratic has a closed form in the
    # eigenbasis of the Gram matrix, so any early-stopping time tau costs one
    # eigendecomposition (the same iterates as tau explicit GD steps, lr 1/(2L)).
    lam, u = jnp.linalg.eigh(gram)
    lam = jnp.maximum(lam, 0.0)
    lr = 0.5 / jnp.maximum(lam[-1], 1e-12)
    tau = hp.get("tau", jnp.asarray(cfg.tau_max, jnp.float32))
    shrink = 1.0 - (1.0 - 2.0 * lr * lam) ** tau            # [m]
    gain = jnp.where(lam > 1e-12 * lam[-1], shrink / jnp.maximum(lam, 1e-30), 2.0 * lr * tau)
    a = -u @ (gain[:, None] * (u.T @ lin))
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
