"""Twin-sight (Zhang et al., ICLR 2024): federated semi-supervised learning with a twin
of a supervised and a self-supervised model tied by neighbourhood preservation.

Each client trains ``f_s`` (cross-entropy on labels where it has them) and ``f_u``
(instance discrimination on two views), and the NP loss aligns the cosine Gram
matrices of their backbone features; both models are averaged with n_k weights and
``f_s`` is evaluated. Built as a ``jaxlab.federated`` plug-in (``f_u`` is the
plug-in's owned model). See docs/twin_sight.md.

References:
  Zhang et al., "Robust Training of Federated Models with Extremely Label Deficiency",
  ICLR 2024 (arXiv 2402.14430); code visitworld123/Twin-sight.
"""

from jaxlab.methods.twin_sight.augment import AugConfig, crop_flip, rand_augment, views
from jaxlab.methods.twin_sight.config import TwinSightConfig
from jaxlab.methods.twin_sight.losses import (fixmatch_mask, freematch_init, freematch_mask,
                                              freematch_thresholds, freematch_update, np_loss,
                                              np_normaliser, nt_xent, pseudo_label_loss)
from jaxlab.methods.twin_sight.method import METHODS, Built, keep_owned_opt, make
from jaxlab.methods.twin_sight.model import BackboneConfig, Twin, make_twin
from jaxlab.methods.twin_sight.settings import (pc_extra, pc_labeled, pd_extra, pd_split,
                                                reference_unlabeled_ids)

Config = TwinSightConfig

__all__ = [
  "AugConfig", "BackboneConfig", "Built", "Config", "METHODS", "Twin", "TwinSightConfig",
  "crop_flip", "fixmatch_mask", "freematch_init", "freematch_mask", "freematch_thresholds",
  "freematch_update", "keep_owned_opt", "make", "make_twin", "np_loss", "np_normaliser",
  "nt_xent", "pc_extra", "pc_labeled", "pd_extra", "pd_split", "pseudo_label_loss",
  "rand_augment", "reference_unlabeled_ids", "views",
]
