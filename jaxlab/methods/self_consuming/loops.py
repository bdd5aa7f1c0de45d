"""The generation loop: `lax.scan` over generations, `vmap` over seeds and sizes.

Scenarios (how generation i >= 1 forms its training set; generation 0 always
trains on ``n_real`` real samples):

- ``fully_synthetic``: ``n_synthetic`` samples from p_{i-1} only;
- ``augment_fixed_real``: the same real set every generation + synthetic;
- ``fresh_real``: new real samples every generation + synthetic;
- ``accumulate``: every earlier real and synthetic sample + new synthetic.

Generation i >= 1 weighs its rows in two blocks: the real rows carry total
weight lambda (``hp["lambda"]``, a swept scalar) and the synthetic rows
1 - lambda; without lambda every row weighs the same (the proportional mix,
lambda = n_real / (n_real + n_synthetic)). The real set has ``n_real`` rows
whatever lambda is. Every random draw comes from `stream_key` over (seed,
generation, stream), so each fit gets fresh training noise.

Sizes are dynamic scalars under static maxima (padding + a count: the data are
the first rows of a padded array), so one compiled program covers seeds x
sizes x lambda x generations. `run_sweep(..., buckets=3)` groups points of very different
sizes into a few buckets, one program each, so a point with 50 synthetic
samples is not padded to 6400.
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
  """The learner, p* on the learner's grid and the grid's cell volume."""
  points, cell = mixture.grid_points(cfg.grid, cfg.mixture.dim)
  if cfg.learner == "gaussian":
    return learners.gaussian_mle(points), mixture.density(cfg.mixture, points), cell
  if cfg.learner == "diffusion":
    from jaxlab.methods.self_consuming.diffusion import diffusion

    g = cfg.grid
    centres = g.lo + (jnp.arange(g.size) + 0.5) * (g.hi - g.lo) / g.size
    # the quantile TV compares exact bin masses; the histogram TV compares with p* at the centres
    if cfg.diffusion.tv_method == "quantile":
      target = mixture.bin_density(cfg.mixture, g.lo, g.hi, g.size)
    else:
      target = mixture.density(cfg.mixture, centres[:, None])
    return diffusion(g, cfg.mixture.dim, cfg.diffusion, cfg.seed), target, (g.hi - g.lo) / g.size
  if cfg.learner == "kde":
    return learners.kde(cfg.grid, points, cfg.mixture.dim, cfg.bandwidth, cfg.bandwidth_rule,
                        cfg.density), mixture.density(cfg.mixture, points), cell
  raise ConfigError(f"unknown learner {cfg.learner!r}; use 'kde', 'gaussian' or 'diffusion'")


def _var(x, rows):
  """Weighted variance of the data rows, averaged over dimensions."""
  return jnp.mean(learners.moments(x, rows)[1])


# Random streams: every draw of a run comes from stream_key(seed key, generation, stream).
SYNTH, REAL, FIT = 1, 2, 3


def stream_key(key: jax.Array, generation, stream: int) -> jax.Array:
  """The key of one (generation, stream) of a seed: fold_in over generation, then stream.

  Generation 0 draws its real set (``REAL``) and its fit noise (``FIT``);
  generation g >= 1 draws its synthetic set from p_{g-1} (``SYNTH``), fresh real
  data (``REAL``, ``fresh_real`` only) and its own fit noise (``FIT``). So no two
  fits of a run, and no two seeds, share training noise.
  """
  return jax.random.fold_in(jax.random.fold_in(key, generation), stream)


def real_weight(hp: dict, n_real: jax.Array, n: jax.Array) -> jax.Array:
  """The total weight of the real rows: ``hp["lambda"]`` if given and >= 0, else n_real / n.

  The negative (or missing) lambda is the proportional mix, where every row
  weighs the same and the real fraction falls as synthetic data is added.
  """
  prop = jnp.asarray(n_real, jnp.float32) / jnp.maximum(jnp.asarray(n, jnp.float32), 1.0)
  lam = hp.get("lambda", jnp.asarray(-1.0, jnp.float32))
  return jnp.where(lam >= 0, lam, prop)


def _place(base: jax.Array, start: jax.Array, block: jax.Array) -> jax.Array:
  """``base`` with rows [start, start + len(block)) replaced by ``block`` (cut at the end).

  A gather, not `dynamic_update_slice`, which would move a block that overhangs the end.
  """
  j = jnp.arange(base.shape[0])
  src = j - start
  inside = (src >= 0) & (src < block.shape[0])
  return jnp.where(inside[:, None], block[jnp.clip(src, 0, block.shape[0] - 1)], base)


def _fit_rows(base: jax.Array, size: int) -> jax.Array:
  """``base`` [n, d] cut or zero-padded to ``size`` rows."""
  if base.shape[0] >= size:
    return base[:size]
  return jnp.pad(base, ((0, size - base.shape[0]), (0, 0)))


def train_size(cfg: Config, n_real: int, n_synth: int) -> int:
  """Rows the largest training set of one point needs (generation >= 1)."""
  if cfg.scenario == "accumulate":
    return n_real + cfg.generations * n_synth
  return (0 if cfg.scenario == "fully_synthetic" else n_real) + n_synth


def make_loop(cfg: Config, n_real_max: int, n_synth_max: int,
              size: int | None = None) -> Callable:
  """``loop(key, n_real, n_synth, hp) -> {"tv": [G+1], "var": [G+1]}`` for one seed.

  ``n_real`` is the real-set size of every generation, generation 0 included;
  ``hp["lambda"]`` (optional, >= 0) is the total weight of the real rows in each
  later generation's training objective, independent of the sizes (missing or
  negative: the proportional mix n_real / (n_real + n_synth)). ``var`` is the
  weighted variance of each generation's training set (averaged over
  dimensions), the quantity whose collapse or inflation the theory predicts.
  ``size`` is the static row count of the training sets of generations >= 1; it
  must be >= `train_size` of every point run (default: the maxima's).
  """
  if cfg.scenario not in SCENARIOS:
    raise ConfigError(f"unknown scenario {cfg.scenario!r}; use one of {', '.join(SCENARIOS)}")
  learner, p_star, cell = make_learner(cfg)
  gens, d = cfg.generations, cfg.mixture.dim
  acc = cfg.scenario == "accumulate"
  keep_real = cfg.scenario != "fully_synthetic"
  # the carried generation-0 fit holds the real rows too
  size = max(1, n_real_max, train_size(cfg, n_real_max, n_synth_max) if size is None else size)

  def loop(key, n_real, n_synth, hp):
    real0 = mixture.sample(stream_key(key, 0, REAL), cfg.mixture, n_real_max)
    rows0, k_fit0 = learners.uniform_rows(n_real), stream_key(key, 0, FIT)
    # generation 0's density from the real rows alone (no padding to the synthetic sizes)
    tv0 = tv_grid(learner.density(learner.fit(k_fit0, real0, rows0, hp)), p_star, cell)
    var0 = _var(real0, rows0)
    if gens == 0:
      return {"tv": tv0[None], "var": var0[None]}
    # ... and the same fit (same key, draws are prefix-stable) at the training-set shape
    pool0 = _fit_rows(real0, size)
    params0 = learner.fit(k_fit0, pool0, rows0, hp)

    def generation(carry, g):
      params, pool = carry
      synth = learner.sample(stream_key(key, g, SYNTH), params, n_synth_max)
      if acc:  # pool holds n_real + (g - 1) * n_synth rows; the new ones go right after
        start = n_real + (g - 1) * n_synth
        x = pool = _place(pool, start, synth)
      else:
        real = (mixture.sample(stream_key(key, g, REAL), cfg.mixture, n_real_max)
                if cfg.scenario == "fresh_real" else real0)
        start = n_real if keep_real else 0
        base = _fit_rows(real, size) if keep_real else jnp.zeros((size, d))
        x = _place(base, start, synth)
      n = start + n_synth
      first = n_real if keep_real else 0
      rows = learners.Rows(jnp.asarray(first, jnp.int32), jnp.asarray(n, jnp.int32),
                           real_weight(hp, first, n))
      params = learner.fit(stream_key(key, g, FIT), x, rows, hp)
      tv = tv_grid(learner.density(params), p_star, cell)
      return (params, pool if acc else ()), (tv, _var(x, rows))

    _, (tvs, vs) = jax.lax.scan(generation, (params0, pool0 if acc else ()),
                                jnp.arange(1, gens + 1))
    return {"tv": jnp.concatenate([tv0[None], tvs]), "var": jnp.concatenate([var0[None], vs])}

  return loop


@functools.lru_cache(maxsize=32)
def make_sweep(cfg: Config, n_real_max: int, n_synth_max: int,
               size: int | None = None) -> Callable:
  """``sweep(keys [S], n_real [P], n_synth [P], hp {k: [P]}) -> {"tv": [S, P, G+1]}``.

  Cached per (config, maxima, size), so repeated sweeps reuse one compiled program.
  """
  loop = make_loop(cfg, n_real_max, n_synth_max, size)
  over_points = jax.vmap(loop, in_axes=(None, 0, 0, 0))
  return jax.jit(jax.vmap(over_points, in_axes=(0, None, None, None)))


def seed_keys(seed: int, seeds: int) -> jax.Array:
  return jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(seeds))


def bucket_points(cfg: Config, n_real: Sequence[int], n_synth: Sequence[int],
                  buckets: int) -> list[list[int]]:
  """Groups sweep points into at most ``buckets`` padded shapes.

  A point's lane costs about (training rows + synthetic draws + real rows) of its
  bucket's maxima. Points sorted by that size are split into contiguous groups that
  minimise the padded cost; the fewest groups within 10% of the best are kept. Each
  group is one more compiled program (~3 s on a CPU), so the points stay in one
  group unless splitting at least halves the padded work.
  """
  p = len(n_synth)
  order = sorted(range(p), key=lambda i: (train_size(cfg, n_real[i], n_synth[i]), n_synth[i],
                                         n_real[i]))

  def cost(a, b):  # points order[a:b] in one bucket
    idx = order[a:b]
    t = max(train_size(cfg, n_real[i], n_synth[i]) for i in idx)
    return (b - a) * (t + max(n_synth[i] for i in idx) + max(n_real[i] for i in idx))

  k_max = max(1, min(buckets, p))
  inf = float("inf")
  best = [[inf] * (p + 1) for _ in range(k_max + 1)]  # best[k][b]: first b points in k groups
  cut = [[0] * (p + 1) for _ in range(k_max + 1)]
  best[0][0] = 0.0
  for k in range(1, k_max + 1):
    for b in range(1, p + 1):
      for a in range(k - 1, b):
        c = best[k - 1][a] + cost(a, b)
        if c < best[k][b]:
          best[k][b], cut[k][b] = c, a
  top = min(best[k][p] for k in range(1, k_max + 1))
  k = next(k for k in range(1, k_max + 1) if best[k][p] <= 1.1 * top)
  if k == 1 or best[k][p] > 0.5 * best[1][p]:
    return [list(range(p))]
  groups, b = [], p
  while k > 0:
    a = cut[k][b]
    groups.append(order[a:b])
    b, k = a, k - 1
  return groups[::-1]


def run_sweep(cfg: Config, n_real: Sequence[int] | None = None,
              n_synth: Sequence[int] | None = None,
              hp: dict[str, Sequence[float]] | None = None,
              buckets: int = 1, seed_range: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
  """Runs seeds x points x generations, one compiled program per size bucket.

  A point is ``(n_real, n_synth, hp)``; by default ``(cfg.n_real, s, {})`` for
  each ``s`` in ``cfg.n_synthetic``. ``hp`` values are swept scalars aligned
  with the points (e.g. ``{"tau": [...]}`` for the diffusion learner).
  ``buckets`` caps the number of padded shapes. The default, 1, pads every point
  to the largest: one compile, best for a sweep run once. For a sweep run again
  and again, ``buckets=3`` pads small points to small shapes (see
  `bucket_points`): ~3x faster per call on the KDE phase-transition sweep, for
  ~3x the compile time. With JAX's default partitionable threefry a point's
  random draws do not depend on its padding, so bucketing changes no result
  beyond float rounding. ``seed_range=(a, b)`` runs seeds a..b-1 only (the
  same keys as in the full run), so a long sweep can run and resume in chunks.
  """
  n_synth = [int(s) for s in (cfg.n_synthetic if n_synth is None else n_synth)]
  n_real = [cfg.n_real] * len(n_synth) if n_real is None else [int(r) for r in n_real]
  hp = {k: np.asarray(v, np.float32) for k, v in (hp or {}).items()}
  for k, v in hp.items():
    if v.shape != (len(n_synth),):
      raise ConfigError(f"hp[{k!r}] has {v.shape[0]} values for {len(n_synth)} sweep points")
  if len(n_real) != len(n_synth):
    raise ConfigError("n_real and n_synth must pair up (same length)")
  if not n_synth:
    raise ConfigError("a sweep needs at least one point")
  if min(n_real) < 1 and cfg.scenario != "fully_synthetic":
    raise ConfigError("n_real must be >= 1 (generation 0 trains on real data)")
  if min(n_synth) < 0:
    raise ConfigError("n_synth must be >= 0")
  a, b = (0, cfg.seeds) if seed_range is None else seed_range
  if not 0 <= a < b <= cfg.seeds:
    raise ConfigError(f"seed_range {seed_range} must satisfy 0 <= a < b <= seeds={cfg.seeds}")
  keys = seed_keys(cfg.seed, cfg.seeds)[a:b]
  parts = []
  for idx in bucket_points(cfg, n_real, n_synth, buckets):
    r, s = [n_real[i] for i in idx], [n_synth[i] for i in idx]
    size = max(train_size(cfg, a, b) for a, b in zip(r, s))
    sweep = make_sweep(cfg, max(max(r), 1), max(max(s), 1), max(size, 1))
    parts.append((idx, sweep(keys, jnp.asarray(r), jnp.asarray(s),
                             {k: jnp.asarray(v[idx]) for k, v in hp.items()})))
  out = {}
  for idx, res in jax.device_get(parts):
    for k, v in res.items():
      if k not in out:
        out[k] = np.zeros((v.shape[0], len(n_synth)) + v.shape[2:], v.dtype)
      out[k][:, idx] = v
  return out


def lambda_pairs(lambdas: Sequence[float], n: int) -> tuple[list[int], list[int]]:
  """(n_real, n_synth) with real proportion lambda of a mixed sample of size n.

  This couples lambda to the real-set size (generation 0 then trains on lambda n
  real samples); `run_grid` sweeps lambda as a weight with a fixed real set instead.
  """
  n_real = [max(1, round(lam * n)) for lam in lambdas]
  return n_real, [n - r for r in n_real]
