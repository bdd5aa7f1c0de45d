"""Quick FL baselines on MNIST (<= 5 min on 2 CPU cores): small CNN, few rounds."""

import pathlib

from experiments.federated import common

DESCRIPTION = "Quick FL baselines on MNIST: FedAvg/FedProx/SCAFFOLD/FedNova, alpha 0.1 vs 0.5"
CLAIM = ("Small offline reproduction (trends only): on K=100 Dirichlet clients, 10 per round,"
         " all four baselines train on the vmapped engine within minutes on a CPU; alpha=0.1"
         " (strong label skew) lags alpha=0.5. The run checks accuracy > chance for every"
         " baseline and reports final/best accuracy and rounds to 90%.")

Config = common.Config


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return Config(algorithms=("scaffold",), alphas=(0.1,), num_clients=10,
                  per_round=3, rounds=2, channels=(4, 8), hidden=16, train_subset=600,
                  test_subset=500, eval_every=1, checkpoint_every=1)
  return Config(dataset="mnist", rounds=15, channels=(8, 16), hidden=64, batch_size=50,
                learning_rate=0.05, train_subset=20000, test_subset=2000, eval_every=3,
                checkpoint_every=5, target_accuracy=0.9)


def run(config: Config, out_dir: pathlib.Path) -> dict:
  return common.run(config, out_dir)


report = common.report
