"""DQS constants and the simulator config.

References:
  Zhou et al., "Optical Quantum Sensing for Agnostic Environments via Deep
  Learning", arXiv:2311.07203 (2023); reference code
  ZeddTheGoat/Deep-learning-Quantum-Sensing @ 1fd6fc9.
"""

import dataclasses

from jaxlab.core.errors import ConfigError

# Device ids of the reference code (a setup element is the 4-tuple (id, p1, p2, k)).
IDENTITY, BS, PBS, HWP, QWP, REFL = 0, 1, 2, 3, 4, 5
DC0011, DC00, DC11 = 6, 7, 8
SOURCE_TYPES = (DC0011, DC00, DC11)
DEVICE_TYPES = (BS, PBS, HWP, QWP, REFL)
TWO_PATH = (BS, PBS)
ANGLED = (HWP, QWP)

# The reference `device_dict`; graph type index = 1 + position (0 = START, 15 = END).
DEVICE_DICT = (
  (1, 0), (2, 0), (3, 1), (3, 2), (3, 3), (3, 4), (4, 1), (4, 2), (4, 3), (4, 4),
  (5, 0), (6, 0), (7, 0), (8, 0),
)
NUM_TYPES = len(DEVICE_DICT) + 2

ENVIRONMENTS = ("Z", "X", "Y", "XX")
ANGLE_MODES = ("quantize45", "continuous")
ENGINES = ("factorized", "direct")
PERMANENTS = ("ryser", "glynn")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SimConfig:
  """How setups are sampled and simulated.

  Attributes:
    n_photons: N, the number of paths/photons (even, 2..8).
    min_devices: fewest devices per random setup (reference MIN_LEN = 3).
    max_devices: most devices per random setup (reference MAX_LEN = 15); also
      the padded device length T of every setup array.
    angle_mode: "quantize45" (reference: theta = k pi/4, k in 1..4) or
      "continuous" (theta uniform in [0, pi); reconstructed option [R]).
    engine: "factorized" (Glynn over input sign vectors, output patterns as a
      Kronecker product: all 2^N amplitudes at once) or "direct" (one
      permanent per (output pattern, input branch), vmapped).
    permanent: formula of the direct engine, "ryser" or "glynn".
    success_tol: coincidence probability below which the post-selected state
      is set to 0 (reconstructed [R]: sympy cancels exactly, floats do not).
  """

  n_photons: int = 4
  min_devices: int = 3
  max_devices: int = 15
  angle_mode: str = "quantize45"
  engine: str = "factorized"
  permanent: str = "ryser"
  success_tol: float = 1e-12

  def __post_init__(self):
    n = self.n_photons
    if n < 2 or n % 2 or n > 12:
      raise ConfigError(f"n_photons={n} must be even and in 2..12; use 4, 6 or 8")
    if not 1 <= self.min_devices <= self.max_devices:
      raise ConfigError(
        f"need 1 <= min_devices <= max_devices, got {self.min_devices},"
        f" {self.max_devices}; the reference uses 3 and 15"
      )
    for name, value, allowed in (
      ("angle_mode", self.angle_mode, ANGLE_MODES),
      ("engine", self.engine, ENGINES),
      ("permanent", self.permanent, PERMANENTS),
    ):
      if value not in allowed:
        raise ConfigError(f"{name}={value!r} is unknown; choose one of {allowed}")

  @property
  def n_modes(self) -> int:
    return 2 * self.n_photons

  @property
  def n_sources(self) -> int:
    return self.n_photons // 2
