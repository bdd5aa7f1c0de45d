"""Quick FedFed vs FedAvg on Fashion-MNIST (<= 5 minutes on 2 CPU cores)."""

import pathlib

from experiments.fedfed import common
from jaxlab.methods.fedfed import FedFedConfig
from jaxlab.methods.fedfed import study

DESCRIPTION = "Quick FedAvg vs FedAvg+FedFed on Fashion-MNIST (alpha 0.1, K=10, one seed)"
CLAIM = (
  "FedFed (NeurIPS'23, README Table 1, CIFAR-10, alpha 0.1, K=10): FedAvg 79.35 -> 92.34 with "
  "FedFed. This quick small offline run (Fashion-MNIST subset, small CNN, a 28x28 VAE, few "
  "rounds, one seed) checks the sign of the gain and reports why it is or is not there "
  "(class separability of the shared features, VAE reconstruction error, accuracy vs sigma)."
)

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  if smoke:
    return common.smoke("fashion_mnist", sigmas=(0.5,))
  return study.StudyConfig(
    dataset="fashion_mnist", train_size=2000, test_size=1000, cnn_channels=(16, 32),
    cnn_hidden=128, settings=("0.1/10/5",), seeds=(0,), sigmas=(0.05, 0.5), rounds=15,
    batch_size=32, checkpoint_every=5,
    fedfed=FedFedConfig(vae_width=8, vae_rounds=2, vae_per_round=10, vae_aug_batch=32))


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run_study(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "FedAvg vs FedAvg+FedFed, Fashion-MNIST quick (small offline run)")
