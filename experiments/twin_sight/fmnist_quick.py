"""Quick Twin-sight vs the FedAvg lower bound, Fashion-MNIST PC (<= 5 minutes on 2 cores)."""

import pathlib

from experiments.twin_sight import common
from jaxlab.methods.twin_sight import study

DESCRIPTION = "Quick Twin-sight vs FedAvg lower bound, Fashion-MNIST PC (K=10, 4 labeled), 1 seed"
CLAIM = ("Twin-sight (ICLR'24, README table, FMNIST PC): 79.95 vs the FedAvg lower bound's "
         "72.46 (4 labeled + 6 unlabeled clients, ResNet-18, 500 rounds). This quick run "
         "(3k-image subset, CPU CNN, 30 rounds, one seed) checks the sign of the gap only.")

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  return common.fmnist(smoke, twin=common.PC, methods=("fedavg_lower", "twin_sight"), seeds=(0,),
                       train_size=3000, test_size=1000, rounds=30, eval_every=2)


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "Twin-sight, Fashion-MNIST PC quick (small offline reproduction)")
