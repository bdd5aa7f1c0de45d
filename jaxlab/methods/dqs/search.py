"""Predictor-guided setup search vs random search (reconstructed [R], spec A.8).

The reference code has no search step. Minimal faithful reading of the
abstract: sample K candidates, score them with the trained predictor, verify
the top ``budget`` with the exact simulator, and compare with ``budget``
random setups verified by the same simulator (equal exact-simulation budget).

Equal exact simulations flatter the predictor: the simulator is fast (about
17k setups/s at N = 4), so `matched_random_search` also gives random search
the predictor pipeline's whole compute (its training data plus as many random
exact simulations as the GNN's training and scoring wall time allows).
"""

import time

import jax
import numpy as np

from jaxlab.core.progress import progress
from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import environments, graphs, simulator
from jaxlab.methods.dqs.setups import Setups, sample_setups


def summarise(qfi: np.ndarray, n: int, env: str, prob: np.ndarray | None = None
              ) -> dict[str, float]:
  """Best QFI / HL, fraction and number of verified setups at HL, hit flag.

  With ``prob`` (post-selection probabilities) also the best P * QFI / HL,
  the Fisher information per attempted (not only heralded) shot.
  """
  hl = environments.heisenberg_limit(n, env)
  at_hl = qfi >= hl - 1e-3
  out = {
    "best_qfi_over_hl": float(qfi.max() / hl),
    "mean_qfi_over_hl": float(qfi.mean() / hl),
    "frac_at_hl": float(at_hl.mean()),
    "n_at_hl": int(at_hl.sum()),
    "found_hl": float(at_hl.any()),
    "n_simulated": len(qfi),
  }
  if prob is not None:
    out["best_pqfi_over_hl"] = float(np.max(prob * qfi) / hl)
  return out


def verify(setups: Setups, cfg: C.SimConfig, env: str, batch_size: int = 64
           ) -> tuple[np.ndarray, np.ndarray]:
  """Exact QFI [k] under ``env`` and post-selection probability [k] of ``setups``."""
  with jax.enable_x64(True):
    res = simulator.simulate(setups, cfg, batch_size=batch_size)
  return res.qfi[:, C.ENVIRONMENTS.index(env)], np.asarray(res.prob)


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
  verified = cands.take(top)
  qfi, prob = verify(verified, cand_cfg, env)
  out = summarise(qfi, cfg.n_photons, env, prob)
  out["n_scored"] = int(n_candidates)
  return out, verified.take(np.argsort(-qfi, kind="stable"))


def random_search(
  cfg: C.SimConfig, env: str, *, budget: int, rng: np.random.Generator
) -> dict[str, float]:
  """``budget`` random setups, all verified exactly (the baseline)."""
  qfi, prob = verify(sample_setups(rng, budget, cfg), cfg, env)
  return summarise(qfi, cfg.n_photons, env, prob)


def matched_random_search(
  cfg: C.SimConfig, env: str, *, seconds: float, seed: int, clock: str = "cpu",
  prior_qfi: np.ndarray | None = None, prior_prob: np.ndarray | None = None,
  chunk: int = 2048, max_setups: int | None = None,
) -> dict[str, float]:
  """Random search given a wall-clock budget: the compute-matched baseline.

  Simulates chunks of random setups (chunk i drawn with
  ``default_rng([seed, i])``, so the setups are a fixed sequence and only
  their number depends on the machine's speed) until ``seconds`` have passed
  on ``clock`` or ``max_setups`` are done. ``clock="cpu"`` (default) counts
  this process's CPU time, which other jobs on a shared machine do not
  inflate; ``"wall"`` counts wall time. ``prior_qfi``/``prior_prob`` are setups already
  simulated exactly for the same compute, e.g. the predictor's training
  data; they count as part of the search.

  Returns:
    `summarise` of everything simulated, plus ``n_extra`` (setups simulated
    here), ``seconds`` spent on ``clock``, ``wall_seconds`` and ``rate``
    (setups per ``clock`` second).
  """
  if clock not in ("cpu", "wall"):
    raise ValueError(f"clock={clock!r}; choose 'cpu' or 'wall'")
  now = time.process_time if clock == "cpu" else time.perf_counter
  qfis = [np.asarray(prior_qfi, np.float64)] if prior_qfi is not None else []
  probs = [np.asarray(prior_prob, np.float64)] if prior_prob is not None else []
  if prior_qfi is not None and (prior_prob is None or len(prior_prob) != len(prior_qfi)):
    raise ValueError("prior_qfi and prior_prob must be given together, with equal lengths")
  n_extra, i, bar = 0, 0, progress(desc="matched random search", total=None)
  start, wall = now(), time.perf_counter()
  while now() - start < seconds and (max_setups is None or n_extra < max_setups):
    size = chunk if max_setups is None else min(chunk, max_setups - n_extra)
    qfi, prob = verify(sample_setups(np.random.default_rng([seed, i]), size, cfg), cfg, env,
                       batch_size=512)
    qfis.append(qfi)
    probs.append(prob)
    n_extra, i = n_extra + size, i + 1
    bar.update(size)
  bar.close()
  spent, wall = now() - start, time.perf_counter() - wall
  if not qfis:
    raise ValueError("matched_random_search simulated nothing: give seconds > 0 or a prior")
  out = summarise(np.concatenate(qfis), cfg.n_photons, env, np.concatenate(probs))
  out.update(n_extra=n_extra, seconds=spent, wall_seconds=wall, rate=n_extra / max(spent, 1e-9))
  return out


def best_probe(setups: Setups, cfg: C.SimConfig) -> tuple[np.ndarray, float]:
  """The post-selected state [2^N] of the first setup (complex128) and its P."""
  with jax.enable_x64(True):
    res = simulator.simulate(setups.take(np.arange(1)), cfg, batch_size=8)
  return res.psi[0], float(res.prob[0])
