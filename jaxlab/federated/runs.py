"""R runs on the stepped or sequential engine, with a ``Sweep``'s interface.

A ``Sweep`` vmaps R runs into one program, and on an accelerator that is the fast
path. On XLA:CPU a convolution's weight gradient is much slower inside
``lax.scan`` or under ``vmap`` than as a top-level step (see ``fl.stepped``), so a
convolutional sweep on CPU is faster as R ordinary runs, each on the host-stepped
engine (``engine="stepped"``: one client per ``clients`` device, the local steps
unrolled at the top level) or the sequential engine (``engine="sequential"``: one
jitted step at a time; it needs no ``reduce``/``finish``, so it runs any
``FedAlgorithm``). ``Runs`` keeps ``fl.Sweep``'s ``init``/``run_round``/``add_pool``
over states stacked on a leading [R] axis, so ``fl.phases.run``, evaluation,
checkpoints and handoffs are shared; ``make(engine=...)`` picks a ``Sweep``
(``"vmap"``) or ``Runs``.

Run r is an ``Engine`` on run r's partition, per-run extras, key ``keys[r]`` and
hyper-parameters ``hparams[name][r]``: the same plan as the Sweep's run r, so the
rounds equal the vmapped Sweep's (tests). All runs share one set of compiled
functions (every run's index table has the same width). The runs go one after the
other, so wall time grows with R; memory is one run's round.
"""

import copy
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.federated import pool as pool_lib
from jaxlab.federated import schedule, sequential, stepped
from jaxlab.federated.data import make_fed_data
from jaxlab.federated.engine import Engine, EngineConfig
from jaxlab.federated.sweep import Sweep
from jaxlab.federated.types import FedAlgorithm, SimState

ENGINES = ("vmap", "stepped", "sequential")


@jax.jit
def _take(tree, r):
  return jax.tree.map(lambda a: a[r], tree)


@jax.jit
def _stack(trees):
  return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def by_run(fn: Callable) -> Callable:
  """``fn`` over one run's arrays -> the same over R stacked runs, one jitted call a run.

  What ``jax.vmap(fn)`` computes, for CPU code where a vmapped convolution (a grouped
  one) is slower than R plain ones, e.g. evaluating the runs of a ``Runs``.
  """
  one = jax.jit(fn)

  def apply(*trees):
    num_runs = jax.tree.leaves(trees)[0].shape[0]
    return jnp.stack([one(*_take(trees, r)) for r in range(num_runs)])
  return apply


def _part_list(parts: Sequence, num_runs: int | None) -> list[list[np.ndarray]]:
  """One partition per run (``parts`` as ``fl.Sweep`` takes it)."""
  if len(parts) > 0 and isinstance(parts[0], np.ndarray):
    if num_runs is None:
      raise ConfigError("one shared partition was given; pass num_runs=R (or one"
                        " partition per run)")
    return [list(parts)] * num_runs
  out = [list(p) for p in parts]
  if not out or len({len(p) for p in out}) != 1:
    raise ConfigError("parts must hold one partition per run, all with the same K")
  if num_runs is not None and num_runs != len(out):
    raise ConfigError(f"num_runs={num_runs} but {len(out)} partitions were given")
  return out


class Runs:
  """R runs of ``alg``, one ``Engine`` each, stepped or sequential.

  Args:
    alg, config, x, y, parts, extra, num_runs, sampler, preprocess: as ``fl.Sweep``.
    engine: ``"stepped"`` (needs ``alg.reduce``/``finish``, as ``fl.algorithms.*``
      have) or ``"sequential"``.
    mesh: a ``clients`` mesh (``fl.clients_mesh()``): the stepped engine runs one
      lane per device; None = one lane.
    client_table: as ``Engine`` (with a mesh).
  """

  def __init__(self, alg: FedAlgorithm, config: EngineConfig, x, y, parts: Sequence, *,
               engine: str = "stepped", extra: Callable[[list], dict] | None = None,
               num_runs: int | None = None, sampler=None,
               preprocess=schedule.default_preprocess, mesh: jax.sharding.Mesh | None = None,
               client_table: str | None = None):
    if engine not in ("stepped", "sequential"):
      raise ConfigError(f"engine={engine!r}; Runs takes 'stepped' or 'sequential' (use"
                        " fl.Sweep, or fl.runs.make(engine='vmap'), for the vmapped sweep)")
    part_list = _part_list(parts, num_runs)
    self.engine, self.num_runs = engine, len(part_list)
    self.width = max(len(a) for p in part_list for a in p)
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)   # one device copy for every run
    data = [make_fed_data(x, y, p, extra=extra(p) if extra else None, width=self.width)
            for p in part_list]
    base = Engine(alg, config, data[0], sampler=sampler, preprocess=preprocess, mesh=mesh,
                  client_table=client_table)
    # Compile once for all runs: the per-engine jitted pieces are created before the
    # copies, which then share them (the data is an argument, same shapes in every run).
    (stepped._fns if engine == "stepped" else sequential._fns)(base)
    self.engines = [base] + [base.with_data(d) for d in data[1:]]
    self.num_clients = base.num_clients

  def _round(self, eng: Engine, sim: SimState, ids: np.ndarray, key: jax.Array):
    if self.engine == "stepped":
      return stepped.run_round(eng, sim, ids, key)
    return sequential.run_round(eng, sim, ids, key)

  def init(self, keys: jax.Array, hparams: dict | None = None) -> SimState:
    """R initial states stacked on a leading [R] axis (as ``Sweep.init``)."""
    hparams = {k: jnp.asarray(v, jnp.float32) for k, v in (hparams or {}).items()}
    for k, v in {"keys": keys, **hparams}.items():
      if jnp.shape(v)[:1] != (self.num_runs,):
        raise ConfigError(f"{k} has shape {jnp.shape(v)}; there are R={self.num_runs}"
                          " runs, so pass one value per run")
    return _stack([e.init(keys[r], {k: v[r] for k, v in hparams.items()})
                   for r, e in enumerate(self.engines)])

  def run_round(self, sims: SimState, ids: np.ndarray, keys: jax.Array):
    """One round of every run for the sampled ``ids`` (the same for every run).

    Returns:
      ``(sims, metrics)``, every metric [R] (as ``Sweep.run_round``).
    """
    outs = [self._round(e, _take(sims, r), ids, keys[r]) for r, e in enumerate(self.engines)]
    metrics = {k: jnp.stack([jnp.asarray(o[1][k]) for o in outs]) for k in outs[0][1]}
    return _stack([o[0] for o in outs]), metrics

  def add_pool(self, pool: pool_lib.Pool, sims: SimState, keys: jax.Array,
               chunk: int = 8) -> "Runs":
    """These runs plus each run's shared pool (``fl.pool.build`` with run r's server,
    data and ``keys[r]``, as ``Sweep.add_pool``); one compile for every run."""
    build = jax.jit(functools.partial(pool_lib.build, pool, chunk=chunk))
    new = copy.copy(self)
    new.engines = []
    for r, e in enumerate(self.engines):
      if e.placement == "host":
        raise ConfigError("a shared pool needs the whole dataset on device; build the runs"
                          " with data on device")
      extra = build(_take(sims.server, r), e.data, keys[r])
      new.engines.append(e.with_data(e.data._replace(extra={**e.data.extra, **extra})))
    return new


def make(alg: FedAlgorithm, config: EngineConfig, x, y, parts: Sequence, *,
         engine: str = "vmap", mesh: jax.sharding.Mesh | None = None, **kwargs) -> Sweep | Runs:
  """R runs on ``engine``: ``"vmap"`` -> ``fl.Sweep`` (its ``mesh`` has a ``sweep`` axis),
  ``"stepped"`` or ``"sequential"`` -> ``Runs`` (a ``clients`` mesh). Other keyword
  arguments go to the runner."""
  if engine not in ENGINES:
    raise ConfigError(f"engine={engine!r}; use one of {ENGINES}")
  if engine == "vmap":
    return Sweep(alg, config, x, y, parts, mesh=mesh, **kwargs)
  return Runs(alg, config, x, y, parts, engine=engine, mesh=mesh, **kwargs)
