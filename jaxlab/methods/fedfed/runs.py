"""R runs of one algorithm on the sequential engine, with a ``Sweep``'s interface.

The phase-1 client step (a VAE with many convolutions, three passes) is cheapest on
CPU one client at a time: a vmapped ``lax.scan`` turns every convolution into a
grouped one on XLA:CPU's slow path and runs all three passes' branches of the
``lax.switch`` for every client. ``SequentialRuns`` keeps ``init``/``run_round`` of
``fl.Sweep`` (stacked [R] states, keys [R]) so ``fl.phases.run`` drives either. It
belongs in the engine (a ``Sweep(engine="sequential")``); see docs/fedfed.md.
"""

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.federated import sequential
from jaxlab.federated.data import make_fed_data
from jaxlab.federated.engine import Engine, EngineConfig
from jaxlab.federated.types import FedAlgorithm, Sampler


class SequentialRuns:
  """R runs (one partition each) trained one client at a time.

  Args:
    alg, config, sampler: as ``fl.Sweep``.
    x, y: shared raw inputs and labels.
    parts: one partition per run.
    extra: ``partition -> {name: array}`` per-run ``FedData.extra``.
  """

  def __init__(self, alg: FedAlgorithm, config: EngineConfig, x, y, parts: Sequence,
               *, extra: Callable | None = None, sampler: Sampler | None = None):
    width = max(max(len(a) for a in p) for p in parts)
    base = None
    self.engines = []
    for p in parts:
      data = make_fed_data(x, y, list(p), extra=extra(p) if extra else None, width=width)
      base = base.with_data(data) if base is not None else Engine(alg, config, data,
                                                                    sampler=sampler)
      self.engines.append(base)
    self.num_runs, self.num_clients = len(parts), base.num_clients

  def init(self, keys: jax.Array, hparams: dict | None = None):
    sims = [e.init(keys[r], {k: v[r] for k, v in (hparams or {}).items()})
            for r, e in enumerate(self.engines)]
    return jax.tree.map(lambda *a: jnp.stack(a), *sims)

  def run_round(self, sims, ids: np.ndarray, keys: jax.Array):
    outs = [sequential.run_round(e, jax.tree.map(lambda a: a[r], sims), ids, keys[r])
            for r, e in enumerate(self.engines)]
    stack = lambda *a: jnp.stack([jnp.asarray(v) for v in a])
    return (jax.tree.map(stack, *[o[0] for o in outs]),
            jax.tree.map(stack, *[o[1] for o in outs]))
