"""Resumable, chunked generation of random setups and their QFI labels.

Each chunk ``chunk_00012.npz`` holds ``chunk_size`` setups drawn with
``np.random.default_rng([seed, chunk])`` from the reference distribution
(`setups.sample_setups`) and simulated in complex128 (x64 enabled only inside
`generate`). A chunk is written atomically, so an interrupted run resumes by
skipping the chunks already on disk and ends with the same data.
"""

import dataclasses
import json
import pathlib

import jax
import numpy as np

from jaxlab.core.errors import DataError
from jaxlab.core.progress import progress
from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import environments, simulator
from jaxlab.methods.dqs.setups import Setups, sample_setups

ARRAYS = ("sources", "devices", "angles", "prob", "qfi")


def _chunk_path(directory: pathlib.Path, i: int) -> pathlib.Path:
  return directory / f"chunk_{i:05d}.npz"


def _check_meta(directory: pathlib.Path, meta: dict) -> None:
  path = directory / "meta.json"
  if path.exists():
    old = json.loads(path.read_text())
    if old != meta:
      raise DataError(
        f"{directory} holds a dataset made with {old}, not {meta}; use another"
        " directory or the same settings"
      )
  else:
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2, sort_keys=True))


def generate(
  directory: pathlib.Path | str,
  cfg: C.SimConfig,
  n_setups: int,
  *,
  chunk_size: int = 1000,
  seed: int = 0,
  store_states: bool = False,
  batch_size: int = 256,
) -> dict[str, np.ndarray]:
  """Generates (or resumes) ``n_setups`` labelled setups into ``directory``.

  Args:
    directory: dataset folder (``meta.json`` + chunks).
    cfg: simulator config (N, device counts, angle mode, engine).
    n_setups: total number of setups (rounded up to whole chunks).
    chunk_size: setups per chunk file.
    seed: base seed; chunk i uses ``default_rng([seed, i])``.
    store_states: also store the post-selected states psi [2^N] (complex64).
    batch_size: simulator batch size.

  Returns:
    The dataset, as `load` returns it.
  """
  directory = pathlib.Path(directory)
  n_chunks = -(-n_setups // chunk_size)
  meta = {"sim": dataclasses.asdict(cfg), "chunk_size": chunk_size, "seed": seed,
          "store_states": store_states}
  _check_meta(directory, meta)
  todo = [i for i in range(n_chunks) if not _chunk_path(directory, i).exists()]
  bar = progress(total=n_chunks, initial=n_chunks - len(todo), desc=f"dqs data N={cfg.n_photons}")
  with jax.enable_x64(True):
    for i in todo:
      setups = sample_setups(np.random.default_rng([seed, i]), chunk_size, cfg)
      res = simulator.simulate(setups, cfg, batch_size=batch_size)
      arrays = dict(setups._asdict(), prob=res.prob, qfi=res.qfi.astype(np.float32))
      if store_states:
        arrays["psi"] = res.psi.astype(np.complex64)
      tmp = directory / f".tmp_chunk_{i:05d}.npz"
      np.savez(tmp, **arrays)
      tmp.replace(_chunk_path(directory, i))
      bar.update(1)
  bar.close()
  return load(directory, n_setups)


def load(directory: pathlib.Path | str, n_setups: int | None = None) -> dict[str, np.ndarray]:
  """Concatenates the chunks of ``directory`` (the first ``n_setups`` rows).

  Returns:
    dict with sources [M, N/2], devices [M, T, 4], angles [M, T], prob [M],
    qfi [M, 4] (Z, X, Y, XX) and optionally psi [M, 2^N].

  Raises:
    DataError: the folder has no chunks, or a chunk is missing in between.
  """
  directory = pathlib.Path(directory)
  paths = sorted(directory.glob("chunk_*.npz"))
  if not paths:
    raise DataError(f"no chunk_*.npz in {directory}; run dataset.generate first")
  for i, p in enumerate(paths):
    if p != _chunk_path(directory, i):
      raise DataError(f"{directory} misses chunk {i}; rerun generate to fill it in")
  parts = [dict(np.load(p)) for p in paths]
  out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
  if n_setups is not None:
    out = {k: v[:n_setups] for k, v in out.items()}
  return out


def as_setups(data: dict[str, np.ndarray]) -> Setups:
  return Setups(data["sources"], data["devices"], data["angles"])


def statistics(data: dict[str, np.ndarray], n: int, tol: float = 1e-6) -> dict[str, float]:
  """The A.10 random-setup statistics (failure rate, QFI means/maxima, HL hits)."""
  qfi, prob = data["qfi"], data["prob"]
  out = {
    "n_setups": len(prob),
    "p_failed": float(np.mean(prob <= 1e-12)),
    "p_qfi_z_zero": float(np.mean(qfi[:, 0] <= tol)),
    "mean_prob": float(np.mean(prob)),
  }
  for j, env in enumerate(C.ENVIRONMENTS):
    out[f"mean_qfi_{env}"] = float(np.mean(qfi[:, j]))
    out[f"max_qfi_{env}"] = float(np.max(qfi[:, j]))
    hl = environments.heisenberg_limit(n, env)
    out[f"frac_hl_{env}"] = float(np.mean(qfi[:, j] >= hl - 1e-3))
  return out
