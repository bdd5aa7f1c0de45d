"""Twin-sight on CIFAR-10 with the paper recipe (needs a local CIFAR-10)."""

import pathlib

from jaxlab.methods.twin_sight import AugConfig, BackboneConfig, TwinSightConfig, study

DESCRIPTION = "Twin-sight vs the five baselines on CIFAR-10 PC, ResNet-18 twin (paper recipe)"
CLAIM = ("Twin-sight README table, CIFAR-10 PC: Twin-sight 70.06 vs lower 61.58, FedProx lower "
         "63.66, FixMatch 63.58, FreeMatch 58.47, upper 82.78 (ResNet-18, 500 rounds, K=10, S=5, "
         "Dir(0.1)). Needs CIFAR-10 in the local Hugging Face cache or --set dataset=PATH; "
         "--smoke runs on a tiny random CIFAR-shaped set.")

Config = study.StudyConfig


def get_config(smoke: bool = False) -> study.StudyConfig:
  if smoke:
    # A 1-conv twin on random colour images: RandAugment and colour jitter run; the
    # ResNet twin is covered by tests/methods/twin_sight/client_test.py (compile cost).
    return study.StudyConfig(
      dataset="random_cifar", methods=("twin_sight",), seeds=(0,), rounds=2,
      batch_size=16, num_clients=4, per_round=2, unlabeled_fraction=0.5,
      backbone=BackboneConfig(kind="cnn", channels=(4,), kernel=3, feat_dim=16),
      proj_hidden=16, proj_dim=8,
      aug=AugConfig(strong="randaugment", ra_n=2, ra_m=5, color_jitter=0.8),
      checkpoint_every=2)
  # configs/default.py: SGD 0.01, momentum 0.9, wd 1e-4, B 64, E 1, 500 rounds, K 10, S 5,
  # Dir(0.1); SimCLR projector 512 -> 4096 -> 2048; strong view = RandAugment(3, 5) + weak.
  return study.StudyConfig(
    dataset="cifar10", rounds=500, batch_size=64,
    backbone=BackboneConfig(kind="resnet", resnet_stages=(2, 2, 2, 2), resnet_width=64),
    proj_hidden=4096, proj_dim=2048, twin=TwinSightConfig(setting="pc"),
    aug=AugConfig(crop_pad=4, strong="randaugment", ra_n=3, ra_m=5), eval_every=5,
    checkpoint_every=10)


def run(config: study.StudyConfig, out_dir: pathlib.Path) -> dict:
  return study.run(config, out_dir)


def report(result: dict) -> str:
  return study.report(result, "Twin-sight, CIFAR-10 PC")
