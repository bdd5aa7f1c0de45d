"""Phases: a plug-in's pre-phases (own rounds, S and E) before its main phase.

A ``Phase`` (``types.Phase``) carries its own plug-in; ``run`` builds a runner for
it (an ``Engine`` or a ``Sweep`` of the same baseline with the phase's local
epochs), trains it for its rounds with round-seeded sampling, and ``handoff``
moves what the main phase needs (e.g. a trained VAE) into the main state, per run
in a sweep.
"""

from collections.abc import Callable, Sequence

import jax

from jaxlab.federated.sampling import sample_clients
from jaxlab.federated.types import Phase, Plugin, SimState


def run(phases: Sequence[Phase], make_runner: Callable[[Plugin, int], object],
        keys: jax.Array, hparams: dict | None = None,
        sampling_seed: int | None = None) -> list[tuple[object, SimState, list[dict]]]:
  """Trains every phase in order.

  Args:
    phases: e.g. ``plugin.phases``.
    make_runner: ``(phase plugin, local_epochs) -> Engine | Sweep`` (same data, the
      baseline of the main phase, ``EngineConfig(local_epochs=...)``).
    keys: the root key (Engine) or keys [R] (Sweep); phase i uses
      ``fold_in(key, i + 1)`` for init and training.
    hparams: swept scalars for the phases' ``init`` (names the phase knows).
    sampling_seed: as ``loop.LoopConfig.sampling_seed``.

  Returns:
    ``(runner, final state, per-round metrics)`` per phase.
  """
  out = []
  for i, ph in enumerate(phases):
    runner = make_runner(ph.plugin, ph.local_epochs)
    fold = (jax.vmap(jax.random.fold_in, in_axes=(0, None)) if keys.ndim else jax.random.fold_in)
    pkeys = fold(keys, i + 1)
    sim = runner.init(pkeys, hparams)
    hist = []
    for r in range(ph.rounds):
      ids = sample_clients(r, runner.num_clients, ph.per_round, sampling_seed)
      sim, m = runner.run_round(sim, ids, pkeys)
      hist.append({"phase": ph.name, "round": r + 1, **jax.device_get(m)})
    out.append((runner, sim, hist))
  return out


def handoff(phase: Phase, phase_sim: SimState, main_sim: SimState) -> SimState:
  """``main_sim`` with ``phase.handoff`` applied to its server (vmapped over runs when
  the states carry a sweep's leading [R] axis)."""
  batched = main_sim.server.round.ndim == 1
  fn = jax.vmap(phase.handoff) if batched else phase.handoff
  return main_sim._replace(server=jax.jit(fn)(phase_sim.server, main_sim.server))
