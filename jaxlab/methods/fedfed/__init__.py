"""FedFed (Yang et al., NeurIPS 2023): feature distillation against data heterogeneity.

Phase 1 trains a conditional VAE + classifier g federatedly (three local passes);
every client then shares two noised copies of the performance-sensitive part
x_s = x - x_r of its data into one global pool; phase 2 trains a fresh classifier
with any base algorithm (FedAvg, FedProx, SCAFFOLD, FedNova) on local plus
class-balanced shared rows. See docs/fedfed.md.

References:
  Yang, Z., Zhang, Y., Zheng, Y., Tian, X., Peng, H., Liu, T., Han, B. "FedFed: Feature
  Distillation against Data Heterogeneity in Federated Learning", NeurIPS 2023.
"""

from jaxlab.methods.fedfed import adamw, augment, distill, losses, resample, share
from jaxlab.methods.fedfed.config import SIGMA1, SIGMA2, FedFedConfig
from jaxlab.methods.fedfed.method import FedFed, extra_fn, make
from jaxlab.methods.fedfed.vae import CVAE

Config = FedFedConfig

__all__ = ["CVAE", "Config", "FedFed", "FedFedConfig", "SIGMA1", "SIGMA2", "adamw", "augment",
           "distill", "extra_fn", "losses", "make", "resample", "share"]
