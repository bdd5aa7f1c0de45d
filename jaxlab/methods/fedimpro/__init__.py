"""FedImpro (Tang et al., ICLR 2024): share per-class feature Gaussians across clients.

A classifier is split into a low-level feature extractor and a high-level head; each
client trains the head on real features plus features sampled from a global per-class
diagonal Gaussian, keeps its own estimate of that Gaussian and uploads it; the server
aggregates the estimates. FedImpro is a ``jaxlab.federated`` plug-in, so it runs on
FedAvg, FedProx, SCAFFOLD and FedNova. See docs/fedimpro.md.
"""

from jaxlab.methods.fedimpro.config import FedImproConfig
from jaxlab.methods.fedimpro.diagnostics import estimate_error, true_class_stats
from jaxlab.methods.fedimpro.estimator import (
                                               FeatureStats,
                                               as_coded_beta,
                                               class_moments,
                                               ema_weight,
                                               init_stats,
                                               update_stats,
)
from jaxlab.methods.fedimpro.fake import balanced_labels, fake_weight, sample_fake
from jaxlab.methods.fedimpro.loss import fedimpro_loss
from jaxlab.methods.fedimpro.method import FedImpro, make
from jaxlab.methods.fedimpro.plugin import COUNTS, class_counts, make_plugin
from jaxlab.methods.fedimpro.server import (
                                            add_upload_noise,
                                            label_size_mean,
                                            total_variance,
                                            uniform_mean,
)
from jaxlab.methods.fedimpro.split import SplitModel, from_flax

Config = FedImproConfig

__all__ = [
  "COUNTS", "Config", "FeatureStats", "FedImpro", "FedImproConfig", "SplitModel",
  "add_upload_noise", "as_coded_beta", "balanced_labels", "class_counts", "class_moments",
  "ema_weight", "estimate_error", "fake_weight", "fedimpro_loss", "from_flax", "init_stats",
  "label_size_mean", "make", "make_plugin", "sample_fake", "total_variance",
  "true_class_stats", "uniform_mean", "update_stats",
]
