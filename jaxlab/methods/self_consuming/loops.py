"""The generation loop: `lax.scan` over generations, `vmap` over seeds and sizes.

Scenarios (how generation i >= 1 forms its training set; generation 0 always
trains on ``n_real`` real samples):

- ``fully_synthetic``: ``n_synthetic`` samples from p_{i-1} only;
- ``augment_fixed_real``: the same real set every generation + synthetic;
- ``fresh_real``: new real samples every generation + synthetic;
- ``accumulate``: every earlier real and synthetic sample + new synthetic.

Sizes are dynamic scalars under static maxima (padding + masks), so one
compiled program covers seeds x sizes x generations.
"""

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.methods.self_consuming import learners, mixture
from jaxlab.methods.self_consuming.config import Config
from jaxlab.methods.self_consuming.distances import tv_grid

SCENARIOS = ("fully_synthetic", "augment_fixed_real", "fresh_real", "accumulate")


def make_learner(cfg: Config) -> tuple[learners.Learner, jax.Array, float]:
  """The learner, the evaluation grid and its cell volume."""
  points, cell = mixture.grid_points(cfg.grid, cfg.mixture.dim)
  if cfg.learner == "gaussian":
    return learners.gaussian_mle(points), points, cell
  if cfg.learner == "diffusion":
    from jaxlab.methods.self_consuming.diffusion import diffusion

    g = cfg.grid
    centres = g.lo + (jnp.arange(g.size) + 0.5) * (g.hi - g.lo) / g.size
    return (diffusion(g, cfg.mixture.dim, cfg.diffusion, cfg.seed), centres[:, None],
            (g.hi - g.lo) / g.size)
  if cfg.learner == "kde":
    return learners.kde(cfg.grid, points, cfg.mixture.dim, cfg.bandwidth, cfg.bandwidth_rule,
                        cfg.density), points, cell
  raise ConfigError(f"unknown learner {cfg.learner!r}; use 'kde', 'gaussian' or 'diffusion'")


def _masked_var(x, m):
  w = m.astype(x.dtype)[:, None]
  n = jnp.maximum(w.sum(), 1.0)
  mu = (w * x).sum(0) / n
  return jnp.mean((w * (x - mu) ** 2).sum(0) / n)


def make_loop(cfg: Config, n_real_max: int, n_synth_max: int) -> Callable:
  """``loop(key, n_real, n_synth, hp) -> {"tv": [G+1], "var": [G+1]}`` for one seed.

  ``var`` is the variance of each generation's training set (averaged over
  dimensions), the quantity whose collapse or inflation the theory predicts.
  """
  if cfg.scenario not in SCENARIOS:
    raise ConfigError(f"unknown scenario {cfg.scenario!r}; use one of {', '.join(SCENARIOS)}")
  learner, points, cell = make_learner(cfg)
  p_star = mixture.density(cfg.mixture, points)
  gens, d = cfg.generations, cfg.mixture.dim
  acc = cfg.scenario == "accumulate"
  size = n_real_max + (gens * n_synth_max if acc else n_synth_max)
  real_slots = jnp.arange(n_real_max)
  synth_slots = jnp.arange(n_synth_max)

  def loop(key, n_real, n_synth, hp):
    real0 = mixture.sample(jax.random.fold_in(key, 0), cfg.mixture, n_real_max)
    rmask = real_slots < n_real
    x0 = jnp.zeros((size, d)).at[:n_real_max].set(real0)
    m0 = jnp.zeros(size, bool).at[:n_real_max].set(rmask)
    params0 = learner.fit(x0, m0, hp)
    tv0 = tv_grid(learner.density(params0), p_star, cell)

    def generation(carry, i):
      params, x, m = carry
      k = jax.random.fold_in(key, i + 1)
      synth = learner.sample(jax.random.fold_in(k, 1), params, n_synth_max)
      smask = synth_slots < n_synth
      if acc:
        start = n_real_max + i * n_synth_max
        x = jax.lax.dynamic_update_slice(x, synth, (start, 0))
        m = jax.lax.dynamic_update_slice(m, smask, (start,))
      else:
        if cfg.scenario == "fresh_real":
          real = mixture.sample(jax.random.fold_in(k, 2), cfg.mixture, n_real_max)
        else:
          real = real0
        keep_real = cfg.scenario != "fully_synthetic"
        x = jnp.concatenate([real, synth])
        m = jnp.concatenate([rmask & keep_real, smask])
      params = learner.fit(x, m, hp)
      tv = tv_grid(learner.density(params), p_star, cell)
      return (params, x, m), (tv, _masked_var(x, m))

    _, (tvs, vs) = jax.lax.scan(generation, (params0, x0, m0), jnp.arange(gens))
    return {"tv": jnp.concatenate([tv0[None], tvs]),
            "var": jnp.concatenate([_masked_var(x0, m0)[None], vs])}

  return loop


@functools.lru_cache(maxsize=16)
def make_sweep(cfg: Config, n_real_max: int, n_synth_max: int) -> Callable:
  """``sweep(keys [S], n_real [P], n_synth [P], hp {k: [P]}) -> {"tv": [S, P, G+1]}``.

  Cached per (config, maxima), so repeated sweeps reuse one compiled program.
  """
  loop = make_loop(cfg, n_real_max, n_synth_max)
  over_points = jax.vmap(loop, in_axes=(None, 0, 0, 0))
  return jax.jit(jax.vmap(over_points, in_axes=(0, None, None, None)))


def seed_keys(seed: int, seeds: int) -> jax.Array:
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(seeds))


def run_sweep(cfg: Config, n_real: Sequence[int] | None = None,
              n_synth: Sequence[int] | None = None,
              hp: dict[str, Sequence[float]] | None = None) -> dict[str, np.ndarray]:
  """Runs seeds x points x generations as one compiled program.

  A point is ``(n_real, n_synth, hp)``; by default ``(cfg.n_real, s, {})`` for
  each ``s`` in ``cfg.n_synthetic``. ``hp`` values are swept scalars aligned
  with the points (e.g. ``{"tau": [...]}`` for the diffusion learner).
  """
  n_synth = list(cfg.n_synthetic if n_synth is None else n_synth)
  n_real = [cfg.n_real] * len(n_synth) if n_real is None else list(n_real)
  hp = {k: jnp.asarray(v, jnp.float32) for k, v in (hp or {}).items()}
  for k, v in hp.items():
    if v.shape != (len(n_synth),):
      raise ConfigError(f"hp[{k!r}] has {v.shape[0]} values for {len(n_synth)} sweep points")
  if len(n_real) != len(n_synth):
    raise ConfigError("n_real and n_synth must pair up (same length)")
  if min(n_real) < 1 and cfg.scenario != "fully_synthetic":
    raise ConfigError("n_real must be >= 1 (generation 0 trains on real data)")
  sweep = make_sweep(cfg, max(n_real), max(max(n_synth), 1))
  out = sweep(seed_keys(cfg.seed, cfg.seeds), jnp.asarray(n_real), jnp.asarray(n_synth), hp)
  return {k: np.asarray(v) for k, v in jax.device_get(out).items()}


def lambda_pairs(lambdas: Sequence[float], n: int) -> tuple[list[int], list[int]]:
  """(n_real, n_synth) with real proportion lambda of a mixed sample of size n."""
  n_real = [max(1, round(lam * n)) for lam in lambdas]
  return n_real, [n - r for r in n_real]
