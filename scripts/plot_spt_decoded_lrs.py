"""Draws docs/img/spt_verdict_decoded_lrs.png: every SPT arm at its lr picked by decoding.

The numbers are docs/spt.md's decoded tables (2026-12-06/07, 2-core CPUs); the run folders they
came from were on machines that no longer exist, so this script draws the tables rather than
pooling folders (``scripts/spt_seeds.py`` does that when the folders are there). Thin lines are
seed 0 at each lr of an arm's grid (SPT and random-8 lanes tuned in bf16, evaluated in fp32).
Run: python scripts/plot_spt_decoded_lrs.py [--out PATH]
"""

import argparse

import numpy as np

from jaxlab.tuning import evaluate as tevaluate
from jaxlab.tuning import verdict


def arms() -> dict:
  full = tevaluate.seed_ci([70.526, 78.421, 75.789])    # full FT 1e-5, seeds 0, 1 and 2
  full_kl = tevaluate.seed_ci([0.01493, 0.01470, 0.01498])
  return {
    "base": {"target": (14.2, 9.2, 19.2), "kl": (0.0, np.nan, np.nan)},
    "SPT top-8, 1e-3 (3 seeds)": {
      "target": (65.1, 48.3, 81.9), "kl": (0.037, 0.036, 0.038),
      "per_lr": [("1e-3", 0.037, 67.4), ("3e-3", 0.075, 62.1), ("1e-2", 0.209, 61.1)]},
    "random-8, 1e-3 (3 seeds)": {
      "target": (76.7, 69.0, 84.3), "kl": (0.040, 0.005, 0.075),
      "per_lr": [("1e-3", 0.045, 75.8), ("1e-2", 0.290, 67.4)]},
    "full FT, 1e-5 (3 seeds)": {
      "target": full, "kl": full_kl,
      "per_lr": [("1e-5", 0.0149, 70.5), ("3e-5", 0.036, 65.3), ("1e-4", 0.164, 65.3)]},
    "LoRA r16, 1e-4 (3 seeds)": {
      "target": (82.3, 79.6, 85.0), "kl": (0.071, 0.066, 0.077),
      "per_lr": [("1e-4", 0.072, 83.2), ("3e-4", 0.292, 62.6), ("1e-3", 0.488, 62.6)]},
  }


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--out", default="docs/img/spt_verdict_decoded_lrs.png")
  args = ap.parse_args()
  print("plot:", verdict.frontier(args.out, arms(), target="Truthfulness (decoded, %)",
                                  title="SPT arms, each at its lr by decoding "
                                        "(thin lines: seed 0 per lr)"))


if __name__ == "__main__":
  main()
