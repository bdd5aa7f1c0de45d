"""Twin-sight and the paper's five baselines, Fashion-MNIST PC, 3 seeds per vmap."""

import pathlib

from experiments.twin_sight import common
from jaxlab.methods.twin_sight import study

DESCRIPTION = ("Twin-sight vs FedAvg lower/upper, FedProx lower, FedAvg+FixMatch/FreeMatch; "
               "Fashion-MNIST PC, K=10 (reference unlabeled ids), Dir(0.1), 3 seeds")
CLAIM = ("Twin-sight README table, FMNIST PC: upper 88.98 > Twin-sight 79.95 > lower 72.46 > "
         "FedProx lower 70.71 > FixMatch 67.52 > FreeMatch 63.10 (ResNet-18, 500 rounds). This "
         "run (6k-image subset, CPU CNN, 50 rounds, 3 seeds; about 18 min on 2 cores) checks "
         "whether the ordering holds at small scale.")

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  return common.fmnist(smoke, smoke_methods=("fedprox_lower", "fixmatch"), twin=common.PC,
                       train_size=6000, rounds=50)


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "Twin-sight, Fashion-MNIST PC (small offline reproduction)")
