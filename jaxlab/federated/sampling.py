"""Per-round client sampling, identical across methods (FedML ``client_sampling``)."""

import numpy as np

from jaxlab.core.errors import ConfigError


def sample_clients(round_idx: int, num_clients: int, per_round: int,
                   seed: int | None = None) -> np.ndarray:
  """The ids sampled in round ``round_idx``.

  If ``per_round == num_clients`` all ids in order; otherwise
  ``RandomState(round_idx).choice(K, S, replace=False)`` (the reference repos
  reseed the global NumPy stream with the round index, so every method and
  every run seed sees the same schedule). ``seed`` (``sampling_seed=
  "seed_and_round"``) mixes a run seed in instead.

  Returns:
    int64[S] client ids.
  """
  if not 1 <= per_round <= num_clients:
    raise ConfigError(
      f"clients per round {per_round} must lie in [1, num_clients={num_clients}]")
  if per_round == num_clients:
    return np.arange(num_clients)
  rs = np.random.RandomState(round_idx if seed is None else [seed, round_idx])
  return rs.choice(range(num_clients), per_round, replace=False)
