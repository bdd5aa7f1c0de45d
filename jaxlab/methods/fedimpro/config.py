"""FedImpro configuration (spec federated.md section 3.6)."""

import dataclasses
from typing import Literal

import jax.numpy as jnp

from jaxlab.core.errors import ConfigError
from jaxlab.methods.fedimpro.fake import WeightSchedule

ServerEstimate = Literal["selected_uniform", "selected_label_size", "all_label_size"]
_SCHEDULES = ("linear_unclamped", "linear_clamped", "constant", "half_half")
_SERVER = ("selected_uniform", "selected_label_size", "all_label_size")
Estimator = Literal["count_ema", "as_coded", "last_batch", "running"]
_ESTIMATORS = ("count_ema", "as_coded", "last_batch", "running")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FedImproConfig:
  """FedImpro (Tang et al., ICLR 2024, arXiv:2402.07011) on top of a base algorithm.

  Static fields change the program; ``fake_weight_max_epochs``, ``upload_noise_std``,
  ``server_beta`` and (for ``estimator="as_coded"``) ``client_beta`` are dynamic: they
  travel as f32[] arrays in the server state's ``hparams`` so a sweep over them is a vmap.

  Attributes:
    fake_weight_sched: fake-loss weight schedule; ``linear_unclamped`` = t/T as in the
      reference (``gradual2half``), ``linear_clamped`` = min(1, t/T), ``constant`` = 1
      (paper Eq. 5), ``half_half`` = (1 - w) real + w fake.
    fake_weight_max_epochs: T of the schedule (reference 500).
    estimator: the client's update of its feature estimate (``estimator.py``):
      ``count_ema`` (the reference's intent, w_c = min(1, n_c / P_c)), ``as_coded`` (the
      reference as coded: constant w = 1 - client_beta), ``last_batch`` (w = 1) or
      ``running`` (exact pooled moments of the round, ``running.py``; not in the paper).
    client_beta: beta_m of ``as_coded`` (paper Eq. 6); None = the reference's
      ``1 - min(1, D / 5000)`` (0.96 for D = 200). Only for ``estimator="as_coded"``.
    quirk_last_batch_estimator: old spelling of ``estimator="last_batch"`` (still works).
    sigma_clip: elementwise upper bound on sigma after each local update (None: off).
    sigma_init: the server's initial sigma (mu starts U[0, 1)).
    std_mode: ``update`` estimates sigma; ``fixed`` keeps sigma = sigma_init.
    server_estimate: ``selected_uniform`` (reference default), ``selected_label_size``
      (law of total variance over the round's clients) or ``all_label_size`` (also the
      unsampled clients, carrying the previous global estimate).
    server_beta: EMA factor of the global estimate (0 = replace, the reference).
    upload_noise_std: sigma_eps of the Gaussian noise added to uploads (0 = off).
    persistent_local_estimate: keep each client's estimate across rounds (a [K, C, D]
      table) instead of restarting from the global estimate every round.
    fake_ratio: fake rows per real row; the reference's ``B // C + 1`` reps per class
      is ``fake_ratio = 1.0``. Rows = C * (round(fake_ratio * B) // C + 1); 0 disables.
  """

  fake_weight_sched: WeightSchedule = "linear_unclamped"
  fake_weight_max_epochs: float = 500.0
  estimator: Estimator = "count_ema"
  client_beta: float | None = None
  quirk_last_batch_estimator: bool = False
  sigma_clip: float | None = 0.1
  sigma_init: float = 0.1
  std_mode: Literal["update", "fixed"] = "update"
  server_estimate: ServerEstimate = "selected_uniform"
  server_beta: float = 0.0
  upload_noise_std: float = 0.0
  persistent_local_estimate: bool = False
  fake_ratio: float = 1.0

  def __post_init__(self):
    if self.fake_weight_sched not in _SCHEDULES:
      raise ConfigError(
        f"fake_weight_sched={self.fake_weight_sched!r}; use one of {', '.join(_SCHEDULES)}"
      )
    if self.server_estimate not in _SERVER:
      raise ConfigError(
        f"server_estimate={self.server_estimate!r}; use one of {', '.join(_SERVER)}"
      )
    if self.estimator not in _ESTIMATORS:
      raise ConfigError(f"estimator={self.estimator!r}; use one of {', '.join(_ESTIMATORS)}")
    if self.quirk_last_batch_estimator and self.estimator not in ("count_ema", "last_batch"):
      raise ConfigError(
        f"quirk_last_batch_estimator=True conflicts with estimator={self.estimator!r}; "
        "drop the quirk flag (it is the old spelling of estimator='last_batch')")
    if self.quirk_last_batch_estimator:
      object.__setattr__(self, "estimator", "last_batch")
    if self.client_beta is not None and self.estimator != "as_coded":
      raise ConfigError(
        f"client_beta={self.client_beta} only applies to estimator='as_coded' (got "
        f"{self.estimator!r}); set estimator='as_coded' or client_beta=None")
    if self.client_beta is not None and not 0.0 <= self.client_beta <= 1.0:
      raise ConfigError(f"client_beta={self.client_beta} must be in [0, 1] (1 - EMA weight)")
    if self.std_mode not in ("update", "fixed"):
      raise ConfigError(f"std_mode={self.std_mode!r}; use 'update' or 'fixed'")
    if self.fake_weight_max_epochs <= 0:
      raise ConfigError("fake_weight_max_epochs must be > 0 (the reference uses 500)")
    if self.upload_noise_std < 0 or self.fake_ratio < 0:
      raise ConfigError("upload_noise_std and fake_ratio must be >= 0")
    if not 0.0 <= self.server_beta < 1.0:
      raise ConfigError("server_beta must be in [0, 1) (0 replaces the global estimate)")

  def hparams(self) -> dict[str, jnp.ndarray]:
    """The dynamic, sweepable scalars as f32[] arrays."""
    return {
      "fake_weight_max_epochs": jnp.float32(self.fake_weight_max_epochs),
      "upload_noise_std": jnp.float32(self.upload_noise_std),
      "server_beta": jnp.float32(self.server_beta),
    }

  def num_fake(self, batch_size: int, num_classes: int) -> int:
    """M, the number of fake rows per step (class-balanced)."""
    if self.fake_ratio == 0:
      return 0
    b = max(1, round(self.fake_ratio * batch_size))
    return num_classes * (b // num_classes + 1)
