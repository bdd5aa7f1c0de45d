"""Quick FedFed vs FedAvg on Fashion-MNIST (<= 5 minutes on 2 CPU cores)."""

import pathlib

from jaxlab.methods.fedfed import FedFedConfig
from jaxlab.methods.fedfed import study

DESCRIPTION = "Quick FedAvg vs FedAvg+FedFed on Fashion-MNIST (alpha 0.1, K=10, one seed)"
CLAIM = (
  "FedFed (NeurIPS'23, README Table 1, CIFAR-10, alpha 0.1, K=10): FedAvg 79.35 -> 92.34 with "
  "FedFed. This quick small offline run (Fashion-MNIST subset, small CNN, a 28x28 VAE, few "
  "rounds, one seed) checks the sign of the gain and reports why it is or is not there "
  "(class separability of the shared features, VAE reconstruction error)."
)

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  if smoke:
    return study.StudyConfig(
      dataset="fashion_mnist", train_size=300, test_size=100, cnn_channels=(4, 8), cnn_hidden=16,
      settings=("0.1/4/2",), seeds=(0,), rounds=2, batch_size=16, checkpoint_every=1,
      fedfed=FedFedConfig(vae_width=4, vae_rounds=1, vae_per_round=4, vae_batch=16,
                          vae_aug_batch=8, pool_batch=16))
  return study.StudyConfig(
    dataset="fashion_mnist", train_size=3000, test_size=1000, cnn_channels=(16, 32),
    cnn_hidden=128, settings=("0.1/10/5",), seeds=(0,), rounds=20, batch_size=32,
    checkpoint_every=10,
    fedfed=FedFedConfig(vae_width=16, vae_rounds=3, vae_per_round=10, vae_aug_batch=32))


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run_study(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "FedAvg vs FedAvg+FedFed, Fashion-MNIST quick (small offline run)")
