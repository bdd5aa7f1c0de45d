"""Phases: a plug-in's pre-phases (own rounds, S and E) before its main phase.

A ``Phase`` (``types.Phase``) carries its own plug-in; ``run`` builds a runner for
it (an ``Engine`` or a ``Sweep`` of the same baseline with the phase's local
epochs), trains it for its rounds with round-seeded sampling, and ``handoff``
moves what the main phase needs (e.g. a trained VAE) into the main state, per run
in a sweep.

With ``out_dir``, ``run`` checkpoints each phase (every ``checkpoint_every``
rounds and at its end) under ``out_dir/phases/<i>-<name>``; a rerun with the same
arguments restores finished phases, resumes the interrupted one from its last
checkpoint and ends with the states and metrics of an uninterrupted run (keys and
sampling depend only on the phase, the round and the seeds).
"""

import pathlib
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.progress import progress
from jaxlab.federated.sampling import sample_clients
from jaxlab.federated.types import Phase, Plugin, SimState


def run(phases: Sequence[Phase], make_runner: Callable[[Plugin, int], object],
        keys: jax.Array, hparams: dict | None = None,
        sampling_seed: int | None = None, *, out_dir: pathlib.Path | str | None = None,
        checkpoint_every: int = 0) -> list[tuple[object, SimState, list[dict]]]:
  """Trains every phase in order, resuming from ``out_dir`` when it holds checkpoints.

  Args:
    phases: e.g. ``plugin.phases``.
    make_runner: ``(phase plugin, local_epochs) -> Engine | Sweep`` (same data, the
      baseline of the main phase, ``EngineConfig(local_epochs=...)``).
    keys: the root key (Engine) or keys [R] (Sweep); phase i uses
      ``fold_in(key, i + 1)`` for init and training.
    hparams: swept scalars for the phases' ``init`` (names the phase knows).
    sampling_seed: as ``loop.LoopConfig.sampling_seed``.
    out_dir: where each phase's checkpoints go (None: nothing is written).
    checkpoint_every: with ``out_dir``, also save every this many rounds within a
      phase (0: only at the end of each phase).

  Returns:
    ``(runner, final state, per-round metrics)`` per phase.
  """
  out = []
  for i, ph in enumerate(phases):
    runner = make_runner(ph.plugin, ph.local_epochs)
    fold = (jax.vmap(jax.random.fold_in, in_axes=(0, None)) if keys.ndim else jax.random.fold_in)
    pkeys = fold(keys, i + 1)
    sim = runner.init(pkeys, hparams)
    hist, start = [], 0
    ckpt = (Checkpointer(pathlib.Path(out_dir) / "phases" / f"{i}-{ph.name}")
            if out_dir is not None else None)
    if ckpt is not None and ckpt.latest_step() is not None:
      sim, extra = ckpt.restore(sim)
      start, hist = int(extra["round"]), [decode_row(h) for h in extra["history"]]
    for r in progress(range(start, ph.rounds), total=ph.rounds - start, desc=ph.name):
      ids = sample_clients(r, runner.num_clients, ph.per_round, sampling_seed)
      sim, m = runner.run_round(sim, ids, pkeys)
      hist.append({"phase": ph.name, "round": r + 1, **jax.device_get(m)})
      last = r + 1 == ph.rounds
      if ckpt is not None and (last or (checkpoint_every and (r + 1) % checkpoint_every == 0)):
        ckpt.save(r + 1, sim, {"round": r + 1, "history": [encode_row(h) for h in hist]})
    out.append((runner, sim, hist))
  return out


def encode_row(row: dict) -> dict:
  """A metrics row as JSON: arrays become ``{"v": list, "dtype": str}``."""
  return {k: v if isinstance(v, (str, int, float)) else
          {"v": np.asarray(v).tolist(), "dtype": str(np.asarray(v).dtype)}
          for k, v in row.items()}


def decode_row(row: dict) -> dict:
  """Inverse of ``encode_row`` (arrays come back with their dtype)."""
  return {k: np.asarray(v["v"], v["dtype"]) if isinstance(v, dict) else v
          for k, v in row.items()}


def handoff(phase: Phase, phase_sim: SimState, main_sim: SimState) -> SimState:
  """``main_sim`` with ``phase.handoff`` applied to its server (vmapped over runs when
  the states carry a sweep's leading [R] axis)."""
  batched = main_sim.server.round.ndim == 1
  fn = jax.vmap(phase.handoff) if batched else phase.handoff
  return main_sim._replace(server=jax.jit(fn)(phase_sim.server, main_sim.server))
