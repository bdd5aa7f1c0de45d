"""FedFed settings (spec federated.md §4.4; defaults are the reference config.yaml)."""

import dataclasses

from jaxlab.core.errors import ConfigError


@dataclasses.dataclass(frozen=True, kw_only=True)
class FedFedConfig:
  """Static FedFed settings; the noise sigmas are also swept scalars (``hparams``).

  Attributes:
    vae_width: d, channels of the VAE body (reference 32).
    vae_latent: z, latent size; None = the flattened body, d·(H/4)·(W/4) (2048 on CIFAR).
    vae_rounds / vae_per_round / vae_local_epochs: phase-1 schedule (15 / 10 / 1).
    vae_batch: phase-1 batch (32); vae_aug_batch: mosaics per batch (64).
    vae_lr, vae_weight_decay: AdamW (PyTorch semantics, per-client persistent state).
    recon_weight: re as coded (10·VAE_re = 50: the curriculum's epoch index is always 1).
    ce_weight, kl_weight, x_ce_weight: VAE_ce, VAE_kl, VAE_x_ce (2, 0.005, 0.4).
    mixup_alpha: Beta(alpha, alpha) of the classifier warm-up (2).
    adaptive: per-client loss weights from quantity / label skew (properties 1 / 2).
    quantity_frac, label_frac: property thresholds (0.2·N/K, 0.7·n_k).
    sigma1, sigma2: noise std of the two shared copies (0.2, 0.25).
    share_batch: rows per batch of the share pass (only matters for per-batch noise).
    pool_batch: shared rows per copy in each phase-2 step (32).
    crop_pad, flip: crop(pad) and horizontal flip of local and shared rows.
    quirk_noise_per_batch: one noise draw per share batch, broadcast (as coded).
    quirk_uniform_phase2_weights: phase-2 aggregation weights 1/|S| (as coded; FedNova keeps n_k).
    quirk_frozen_vae_label_skew: label-skew clients train only g in pass 3 (as coded).
  """
  vae_width: int = 32
  vae_latent: int | None = None
  vae_rounds: int = 15
  vae_per_round: int = 10
  vae_local_epochs: int = 1
  vae_batch: int = 32
  vae_aug_batch: int = 64
  vae_lr: float = 1e-3
  vae_weight_decay: float = 1e-6
  recon_weight: float = 50.0
  ce_weight: float = 2.0
  kl_weight: float = 0.005
  x_ce_weight: float = 0.4
  mixup_alpha: float = 2.0
  adaptive: bool = True
  quantity_frac: float = 0.2
  label_frac: float = 0.7
  sigma1: float = 0.2
  sigma2: float = 0.25
  share_batch: int = 64
  pool_batch: int = 32
  crop_pad: int = 4
  flip: bool = True
  quirk_noise_per_batch: bool = False
  quirk_uniform_phase2_weights: bool = False
  quirk_frozen_vae_label_skew: bool = False

  def __post_init__(self):
    if min(self.vae_width, self.vae_rounds, self.vae_per_round, self.vae_local_epochs,
           self.vae_batch, self.vae_aug_batch, self.share_batch, self.pool_batch) < 1:
      raise ConfigError("FedFed sizes and counts (vae_width, vae_rounds, vae_per_round, "
                        "vae_local_epochs, vae_batch, vae_aug_batch, share_batch, pool_batch) "
                        "must all be >= 1")
    if self.sigma1 < 0 or self.sigma2 < 0:
      raise ConfigError(f"sigma1={self.sigma1}, sigma2={self.sigma2}: noise std must be >= 0")


SIGMA1 = "noise_sigma1"   # ServerState.hparams names of the swept noise levels
SIGMA2 = "noise_sigma2"
