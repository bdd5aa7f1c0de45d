"""Smoke settings shared by the FedFed experiments (same shapes: one compile cache)."""

from jaxlab.methods.fedfed import FedFedConfig
from jaxlab.methods.fedfed import study


def smoke(dataset: str, **kw) -> study.StudyConfig:
  """Two phase-1 rounds' worth of shapes on a few hundred images: a pipeline check only."""
  base = dict(dataset=dataset, train_size=0 if dataset.startswith("random") else 300,
              test_size=0 if dataset.startswith("random") else 100, cnn_channels=(4, 8),
              cnn_hidden=16, settings=("0.1/4/2",), seeds=(0,), rounds=2, batch_size=16,
              checkpoint_every=1,
              fedfed=FedFedConfig(vae_width=4, vae_rounds=1, vae_per_round=4, vae_batch=16,
                                  vae_aug_batch=8, pool_batch=16))
  return study.StudyConfig(**{**base, **kw})
