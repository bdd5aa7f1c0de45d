"""Predictor-guided setup search vs random search (reconstructed [R], spec A.8).

The reference code has no search step. Minimal faithful reading of the
abstract: sample K candidates, score them with the trained predictor, verify
the top ``budget`` with the exact simulator, and compare with ``budget``
random setups verified by the same simulator (equal exact-simulation budget).
"""

import jax
import numpy as np

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import environments, graphs, simulator
from jaxlab.methods.dqs.setups import Setups, sample_setups


def summarise(qfi: np.ndarray, n: int, env: str) -> dict[str, float]:
  """Best QFI / HL, fraction of verified setups at HL, and hit flag."""
  hl = environments.heisenberg_limit(n, env)
  at_hl = qfi >= hl - 1e-3
  return {
    "best_qfi_over_hl": float(qfi.max() / hl),
    "mean_qfi_over_hl": float(qfi.mean() / hl),
    "frac_at_hl": float(at_hl.mean()),
    "found_hl": float(at_hl.any()),
    "n_simulated": len(qfi),
  }


def verify(setups: Setups, cfg: C.SimConfig, env: str) -> tuple[np.ndarray, Setups]:
  """Exact QFI [k] of ``setups`` under ``env``."""
  with jax.enable_x64(True):
    res = simulator.simulate(setups, cfg, batch_size=64)
  return res.qfi[:, C.ENVIRONMENTS.index(env)], setups


def predictor_search(
  score_fn, cfg: C.SimConfig, env: str, *, n_candidates: int, budget: int,
  rng: np.random.Generator, candidate_cfg: C.SimConfig | None = None,
) -> tuple[dict[str, float], Setups]:
  """Scores ``n_candidates`` random setups, verifies the top ``budget``.

  Args:
    score_fn: GraphArrays -> [K] predicted QFI.
    candidate_cfg: distribution of candidates (default ``cfg``: the reference
      one); a wider one (longer setups) is an option.

  Returns:
    (summary, the verified setups sorted by exact QFI, best first).
  """
  cand_cfg = candidate_cfg or cfg
  cands = sample_setups(rng, n_candidates, cand_cfg)
  scores = np.asarray(score_fn(graphs.build_graphs(cands, cand_cfg)))
  top = np.argsort(-scores, kind="stable")[:budget]
  qfi, verified = verify(cands.take(top), cand_cfg, env)
  out = summarise(qfi, cfg.n_photons, env)
  out["n_scored"] = int(n_candidates)
  return out, verified.take(np.argsort(-qfi, kind="stable"))


def random_search(
  cfg: C.SimConfig, env: str, *, budget: int, rng: np.random.Generator
) -> dict[str, float]:
  """``budget`` random setups, all verified exactly (the baseline)."""
  qfi, _ = verify(sample_setups(rng, budget, cfg), cfg, env)
  return summarise(qfi, cfg.n_photons, env)


def best_probe(setups: Setups, cfg: C.SimConfig) -> np.ndarray:
  """The post-selected state [2^N] of the first setup (complex128)."""
  with jax.enable_x64(True):
    return simulator.simulate(setups.take(np.arange(1)), cfg, batch_size=8).psi[0]
