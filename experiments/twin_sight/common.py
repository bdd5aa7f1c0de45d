"""Configs shared by the Twin-sight experiments (the logic is jaxlab.methods.twin_sight.study)."""

from jaxlab.methods.twin_sight import AugConfig, BackboneConfig, TwinSightConfig
from jaxlab.methods.twin_sight.study import StudyConfig

# A CNN sized for a 2-core CPU: im2col 3x3 convs 8/16 + pool, 64-d features,
# projector 128 -> 64 (the paper: ResNet-18, 512-d features, 4096 -> 2048).
CPU_CNN = BackboneConfig(kind="cnn", channels=(8, 16), kernel=3, feat_dim=64)
FMNIST_AUG = AugConfig(crop_pad=2, strong="weak")   # FMNIST: the weak pipeline twice


def fmnist(smoke: bool, smoke_methods: tuple = (), **kw) -> StudyConfig:
  """A Fashion-MNIST study on the CPU CNN; ``smoke`` shrinks it to seconds (one seed,
  2 rounds, a 1-conv twin and only ``smoke_methods``: each method is a separate compile)."""
  base = dict(dataset="fashion_mnist", backbone=CPU_CNN, proj_hidden=128, proj_dim=64,
              aug=FMNIST_AUG, batch_size=32, train_size=12000, test_size=2000, rounds=100,
              eval_every=2, checkpoint_every=10)
  base.update(kw)
  if smoke:
    base.update(train_size=400, test_size=100, rounds=2, eval_every=1, checkpoint_every=2,
                seeds=(0,), batch_size=16, methods=smoke_methods or base.get("methods"),
                backbone=BackboneConfig(kind="cnn", channels=(4,), kernel=3, feat_dim=16),
                proj_hidden=16, proj_dim=8)
  return StudyConfig(**base)


PC = TwinSightConfig(setting="pc")
PD = TwinSightConfig(setting="pd")
