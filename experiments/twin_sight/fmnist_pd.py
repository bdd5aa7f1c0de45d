"""Twin-sight and baselines, Fashion-MNIST partial-data (5% labels per client)."""

import pathlib

from experiments.twin_sight import common
from jaxlab.methods.twin_sight import study

DESCRIPTION = "Twin-sight vs baselines, Fashion-MNIST PD (ceil(5% n_k) labels per client), 3 seeds"
CLAIM = ("Twin-sight's paper reports PD (label-ratio) results too (numbers unverified in the "
         "spec). This run checks Twin-sight against the labeled-only lower bound and "
         "FedAvg+FixMatch/FreeMatch with 5% labels on every client (PD: FedProx mu 0.5 without "
         "the 1/2, pseudo-label weight 5).")

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  return common.fmnist(smoke, smoke_methods=("freematch", "twin_sight"), twin=common.PD,
                       labeled_fraction=0.05)


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "Twin-sight, Fashion-MNIST PD 5% labels (small offline reproduction)")
