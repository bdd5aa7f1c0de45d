"""The scaffold bound (jaxlab's own, NOT Fu et al.'s theorem; its constants are
unverified). With N = n_r + n_s, lambda = n_r / N, rho = 1 - lambda and a learner
with E TV(A(S), q) <= eps(N) = C N^-a:

  E TV_i <= eps(N) (1 - rho^i) / lambda + rho^i eps(n_0).
"""

import numpy as np


def fit_rate(n: np.ndarray, tv: np.ndarray) -> tuple[float, float]:
  """Least squares of log tv = log C - a log n; returns (C, a)."""
  slope, intercept = np.polyfit(np.log(np.asarray(n, float)), np.log(np.asarray(tv, float)), 1)
  return float(np.exp(intercept)), float(-slope)


def scaffold_bound(c: float, a: float, n_real: np.ndarray, n_synth: np.ndarray,
                   generation: int, n0: int | None = None) -> np.ndarray:
  """The bound on E TV after ``generation`` generations, elementwise over sizes."""
  n_real = np.asarray(n_real, float)
  n_synth = np.asarray(n_synth, float)
  n = n_real + n_synth
  lam = n_real / n
  rho = 1.0 - lam
  eps = c * n ** (-a)
  eps0 = c * (n_real if n0 is None else float(n0)) ** (-a)
  return eps * (1 - rho**generation) / lam + rho**generation * eps0
