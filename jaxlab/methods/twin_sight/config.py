"""Twin-sight's static settings (``configs/default.py`` of the reference, spec §5.5)."""

import dataclasses
from typing import Literal

from jaxlab.core.errors import ConfigError


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwinSightConfig:
  """Attributes:
    setting: ``"pc"`` (partial-client: whole clients unlabeled) or ``"pd"`` (partial-data:
      ``ceil(labeled_fraction * n_k)`` labels per client).
    ssl_method: pseudo-labels for the PD loss, the PC option and the SSL baselines.
    freematch_state: ``"per_round"`` (EMAs reset at every local training, as coded) or
      ``"persistent"`` (a per-client table, as in the original FreeMatch).
    freematch_ema / fixmatch_threshold: FreeMatch EMA decay, FixMatch confidence.
    tau: NT-Xent temperature.
    sim / insdis: weights of the NP loss and of instance discrimination (swept
      scalars ``sim``, ``insdis``: the ablations run in the same vmap).
    quirk_np_xor: the reference's ``B ^ 2`` (bitwise XOR) NP normaliser (swept as
      ``np_xor`` in {0, 1}); default ``B**2``.
    quirk_swap_weak_strong: the reference's swapped weak/strong slices in the PC
      pseudo-label loss (only with ``pc_pseudo_label``).
    pc_pseudo_label / pc_ulb_loss_ratio: pseudo-labels on PC unlabeled clients (off in
      the release) and their weight.
    pd_ulb_loss_ratio: PD pseudo-label weight.
    pd_prox_mu: PD FedProx weight, ``mu * ||w - w_g||^2`` (no 1/2) on both models.
    ssl_model: ``"simclr"`` (projector + NT-Xent) or ``"byol"`` (predictor, EMA target
      network kept per client, updated in the engine's post-step hook).
    byol_decay: BYOL target EMA decay.
    baseline_ulb_ratio: pseudo-label weight of the FedAvg+FixMatch/FreeMatch baselines.
  """
  setting: Literal["pc", "pd"] = "pc"
  ssl_method: Literal["freematch", "fixmatch"] = "freematch"
  freematch_state: Literal["per_round", "persistent"] = "per_round"
  freematch_ema: float = 0.999
  fixmatch_threshold: float = 0.95
  tau: float = 0.07
  sim: float = 1.0
  insdis: float = 0.5
  quirk_np_xor: bool = False
  quirk_swap_weak_strong: bool = False
  pc_pseudo_label: bool = False
  pc_ulb_loss_ratio: float = 0.5
  pd_ulb_loss_ratio: float = 5.0
  pd_prox_mu: float = 0.5
  ssl_model: Literal["simclr", "byol"] = "simclr"
  byol_decay: float = 0.99
  baseline_ulb_ratio: float = 1.0

  def __post_init__(self):
    checks = {"setting": ("pc", "pd"), "ssl_method": ("freematch", "fixmatch"),
              "freematch_state": ("per_round", "persistent"), "ssl_model": ("simclr", "byol")}
    for name, allowed in checks.items():
      if getattr(self, name) not in allowed:
        raise ConfigError(f"{name}={getattr(self, name)!r}; use one of {allowed}")
    if self.tau <= 0:
      raise ConfigError(f"tau={self.tau} must be > 0")
