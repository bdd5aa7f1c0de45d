"""Host loop: sample, run rounds, evaluate, log, checkpoint, resume."""

import dataclasses
import pathlib
import time
from collections.abc import Callable

import jax
import numpy as np

from jaxlab.core.checkpoint import Checkpointer
from jaxlab.core.errors import ConfigError, NonFiniteError
from jaxlab.core.metrics import MetricsWriter
from jaxlab.core.progress import progress
from jaxlab.federated import sequential, stepped
from jaxlab.federated.engine import Engine
from jaxlab.federated.sampling import sample_clients
from jaxlab.federated.types import SimState


ENGINES = ("vmap", "stepped", "sequential")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopConfig:
  """Attributes:
    rounds: total rounds.
    per_round: clients sampled per round (S).
    eval_every: evaluate every this many rounds (and after the last).
    checkpoint_every: save server + client table every this many rounds (0: never).
    engine: "vmap" (clients vmapped, local steps scanned), "stepped" (one client per
      device, host-driven steps: fastest for conv models on CPU) or "sequential".
    sampling_seed: None = reference round-seeded sampling; an int mixes it in.
  """
  rounds: int
  per_round: int
  eval_every: int = 1
  checkpoint_every: int = 0
  engine: str = "vmap"
  sampling_seed: int | None = None

  def __post_init__(self):
    if self.engine not in ENGINES:
      raise ConfigError(f"engine={self.engine!r}; use one of {ENGINES}")


def summarize(history: list[dict], target: float | None = None) -> dict:
  """Final and best accuracy and rounds to ``target`` from per-round rows."""
  acc = [(h["round"], h["accuracy"]) for h in history if "accuracy" in h]
  if not acc:
    return {}
  out = {"final_accuracy": acc[-1][1], "best_accuracy": max(a for _, a in acc)}
  if target is not None:
    hit = [r for r, a in acc if a >= target]
    out["rounds_to_target"] = hit[0] if hit else None
  return out


def train(eng: Engine, key: jax.Array, cfg: LoopConfig,
          evaluate: Callable[[SimState], dict] | None = None,
          out_dir: pathlib.Path | None = None, hparams: dict | None = None,
          desc: str = "rounds", writer_name: str = "metrics.jsonl",
          ckpt_name: str = "checkpoints") -> tuple[SimState, list[dict]]:
  """Runs ``cfg.rounds`` rounds, resuming from ``out_dir/ckpt_name`` if present.

  Args:
    eng: the engine.
    key: root key; split into (init, train) keys, the same on resume.
    cfg: loop settings.
    evaluate: ``sim -> {name: float}`` (global test metrics).
    out_dir: where metrics and checkpoints go (None: nothing written).
    hparams: swept-scalar overrides for ``alg.init``.

  Returns:
    The final state and one dict per round.
  """
  if cfg.engine == "stepped":
    stepped.check_engine(eng)    # refuse before any work (several processes, host data)
  init_key, train_key = jax.random.split(key)
  sim = eng.init(init_key, hparams)
  history, start = [], 0
  writer = MetricsWriter(out_dir, writer_name) if out_dir else None
  ckpt = Checkpointer(pathlib.Path(out_dir) / ckpt_name) if out_dir and cfg.checkpoint_every else None
  if ckpt is not None and ckpt.latest_step() is not None:
    sim, extra = ckpt.restore(sim)
    start, history = int(extra["round"]), list(extra["history"])
    writer.truncate(start)
  runner = {"vmap": eng.run_round,
            "stepped": lambda s, i, k: stepped.run_round(eng, s, i, k),
            "sequential": lambda s, i, k: sequential.run_round(eng, s, i, k)}[cfg.engine]
  for r in progress(range(start, cfg.rounds), total=cfg.rounds - start, desc=desc):
    ids = sample_clients(r, eng.num_clients, cfg.per_round, cfg.sampling_seed)
    t0 = time.perf_counter()
    sim, m = runner(sim, ids, train_key)
    row = {"round": r + 1, **{k: float(v) for k, v in jax.device_get(m).items()}}
    if evaluate is not None and ((r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds):
      row.update({k: float(v) for k, v in evaluate(sim).items()})
    row["round_seconds"] = time.perf_counter() - t0
    if not np.isfinite(row.get("loss", 0.0)):
      raise NonFiniteError(f"training loss is {row['loss']} at round {r + 1}; lower the lr")
    history.append(row)
    if writer is not None:
      writer.write(r + 1, row)
    if ckpt is not None and ((r + 1) % cfg.checkpoint_every == 0 or r + 1 == cfg.rounds):
      ckpt.save(r + 1, sim, {"round": r + 1, "history": history})
  return sim, history
