"""A small diffusion learner with early stopping (the paper's v1 specialisation).

Reconstructed (the paper's exact model is unverified): an Ornstein-Uhlenbeck
forward process x_t = e^-t x_0 + sqrt(1 - e^-2t) eps, a one-hidden-layer
random-feature score network s(x, t) = (1/m) sum_k a_k relu(w_k . [x, phi(t)] + b_k)
with only ``a`` trained, denoising score matching (weight sigma_t^2), plain
gradient descent for ``tau`` steps (tau = the early-stopping time, a swept
scalar), and probability-flow ODE sampling. Because only ``a`` is trained the
DSM loss is quadratic in ``a``: its Gram matrix is formed once per fit and
each GD step is one [m, m] mat-vec.
"""

import jax
import jax.numpy as jnp

from jaxlab.methods.self_consuming.config import DiffusionOptions, Grid
from jaxlab.methods.self_consuming.distances import tv_samples_hist
from jaxlab.methods.self_consuming.learners import Learner, prefix_weights


def _sigma(t):
  return jnp.sqrt(1.0 - jnp.exp(-2.0 * t))


def _features(w, b, x, t):
  """[n, m] relu features of [x, log sigma_t]."""
  inp = jnp.concatenate([x, jnp.log(_sigma(t))[:, None]], -1)
  return jax.nn.relu(inp @ w + b)


def diffusion(grid: Grid, dim: int, cfg: DiffusionOptions = DiffusionOptions(),
              seed: int = 0) -> Learner:
  """A Learner whose ``density`` is a histogram of probability-flow samples."""
  if dim != 1:
    raise ValueError("the diffusion learner's TV estimate is implemented for 1-D data")
  kw, kb, kz = jax.random.split(jax.random.key(seed), 3)
  w = cfg.feature_scale * jax.random.normal(kw, (dim + 1, cfg.width))
  b = cfg.feature_scale * jax.random.uniform(kb, (cfg.width,), minval=-1.0, maxval=1.0)
  z_eval = jax.random.normal(kz, (cfg.eval_samples, dim))
  m = cfg.width

  def fit(x, count, hp):
    key = jax.random.key(seed + 1)
    kt, ke = jax.random.split(key)
    n = x.shape[0]
    xr = jnp.repeat(x, cfg.noise_draws, 0)
    wr = jnp.repeat(prefix_weights(n, count), cfg.noise_draws, 0)
    t = jax.random.uniform(kt, (n * cfg.noise_draws,), minval=cfg.t_min, maxval=cfg.t_max)
    eps = jax.random.normal(ke, xr.shape)
    xt = jnp.exp(-t)[:, None] * xr + _sigma(t)[:, None] * eps
    g = _sigma(t)[:, None] * _features(w, b, xt, t) / m          # [M, m]
    wsum = jnp.maximum(wr.sum(), 1.0)
    gram = (g * wr[:, None]).T @ g / wsum                         # [m, m]
    lin = (g * wr[:, None]).T @ eps / wsum                        # [m, d]
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
    return {"a": a}

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

  def density(params):
    x = ode(params["a"], z_eval)[:, 0]
    # histogram density at the grid's bin centres, as `tv_samples_hist` bins
    g = grid.size
    dx = (grid.hi - grid.lo) / g
    idx = jnp.clip(jnp.floor((x - grid.lo) / dx).astype(jnp.int32), 0, g - 1)
    inside = (x >= grid.lo) & (x < grid.hi)
    return jnp.zeros(g).at[idx].add(inside.astype(jnp.float32)) / (x.shape[0] * dx)

  return Learner(fit, sample, density)


def finite_sample_floor(key: jax.Array, sampler, density_fn, grid: Grid, n: int,
                        repeats: int = 20) -> jax.Array:
  """Mean histogram TV of ``n`` exact samples of p* against p*: the estimator's floor."""
  centres = grid.lo + (jnp.arange(grid.size) + 0.5) * (grid.hi - grid.lo) / grid.size
  dens = density_fn(centres[:, None])

  def one(k):
    return tv_samples_hist(sampler(k, n)[:, 0], dens, grid.lo, grid.hi)

  return jnp.mean(jax.vmap(one)(jax.random.split(key, repeats)))
