"""Environments H (the unknown generator of exp(-i theta H)) and pure-state QFI.

States are [2^N] vectors in the {H=0, V=1} basis, path 0 the most significant
qubit (leftmost in the Kronecker order). Hamiltonians act through their
bit-flip/diagonal structure on a [2]*N view, never as dense matrices.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.methods.dqs.config import ENVIRONMENTS


def _pauli(psi: jax.Array, axis: int, which: str) -> jax.Array:
  """Applies Pauli ``which`` to qubit ``axis`` of a [2]*N tensor."""
  if which == "Z":
    sign = jnp.array([1.0, -1.0]).reshape([2 if a == axis else 1 for a in range(psi.ndim)])
    return psi * sign
  flipped = jnp.flip(psi, axis=axis)
  if which == "X":
    return flipped
  # Y = [[0, -i], [i, 0]]: (Y psi)[0] = -i psi[1], (Y psi)[1] = i psi[0].
  phase = jnp.array([-1j, 1j]).reshape([2 if a == axis else 1 for a in range(psi.ndim)])
  return flipped * phase


def apply_hamiltonian(psi: jax.Array, env: str, n: int) -> jax.Array:
  """H psi for H = 1/2 sum_j P_j (P in Z, X, Y) or 1/2 sum_{i<j} X_i X_j.

  Args:
    psi: [2^N] state.
    env: one of "Z", "X", "Y", "XX".
    n: N.

  Returns:
    [2^N] H psi.
  """
  t = psi.reshape((2,) * n)
  if env in ("Z", "X", "Y"):
    out = sum(_pauli(t, j, env) for j in range(n))
  elif env == "XX":
    out = sum(
      _pauli(_pauli(t, i, "X"), j, "X") for i in range(n) for j in range(i + 1, n)
    )
  else:
    raise ConfigError(f"environment {env!r} is unknown; choose one of {ENVIRONMENTS}")
  return 0.5 * out.reshape(-1)


def qfi(psi: jax.Array, env: str, n: int) -> jax.Array:
  """Pure-state QFI F = 4 (<H^2> - <H>^2); 0 for the zero vector.

  Args:
    psi: [2^N] normalised state (or exactly 0 for a failed post-selection).

  Returns:
    [] real QFI.
  """
  h_psi = apply_hamiltonian(psi, env, n)
  mean = jnp.real(jnp.vdot(psi, h_psi))
  second = jnp.real(jnp.vdot(h_psi, h_psi))
  return 4.0 * (second - mean**2)


def qfi_all(psi: jax.Array, n: int) -> jax.Array:
  """[4] QFI under the environments Z, X, Y, XX (in `ENVIRONMENTS` order)."""
  return jnp.stack([qfi(psi, env, n) for env in ENVIRONMENTS])


def heisenberg_limit(n: int, env: str = "Z") -> float:
  """The maximal pure-state QFI (lambda_max - lambda_min)^2 of H.

  N^2 for the Pauli environments; for XX the spectrum is (S^2 - N)/4 with
  S in {-N, -N+2, ..., N}, so the bound is N^4/16 (= N^2 only at N = 4).
  """
  if env in ("Z", "X", "Y"):
    return float(n**2)
  s = np.arange(-n, n + 1, 2)
  ev = (s**2 - n) / 4
  return float((ev.max() - ev.min()) ** 2)


def standard_quantum_limit(n: int) -> float:
  """N: the largest QFI of a product state under 1/2 sum_j P_j."""
  return float(n)


def ghz_state(n: int, env: str = "Z") -> jax.Array:
  """GHZ probe in the eigenbasis of P: (|+...+> + |-...->)/sqrt 2, [2^N]."""
  if env == "XX":
    raise ConfigError("ghz_state is defined for Z, X or Y; use the Z/X GHZ for XX")
  up = {"Z": [1, 0], "X": [1, 1], "Y": [1, 1j]}[env]
  down = {"Z": [0, 1], "X": [1, -1], "Y": [1, -1j]}[env]
  up, down = np.asarray(up, complex), np.asarray(down, complex)
  up, down = up / np.linalg.norm(up), down / np.linalg.norm(down)
  a, b = up, down
  for _ in range(n - 1):
    a, b = np.kron(a, up), np.kron(b, down)
  return jnp.asarray((a + b) / np.sqrt(2))


def product_state(qubits: np.ndarray) -> jax.Array:
  """Kronecker product of N single-qubit states [N, 2] -> [2^N] (normalised)."""
  q = np.asarray(qubits, complex)
  q = q / np.linalg.norm(q, axis=1, keepdims=True)
  out = q[0]
  for v in q[1:]:
    out = np.kron(out, v)
  return jnp.asarray(out)


def evolve(psi: jax.Array, theta: jax.Array, env: str, n: int) -> jax.Array:
  """exp(-i theta H) psi for the diagonalisable Pauli environments.

  Uses H = 1/2 sum_j P_j = sum_j (rotation of qubit j), i.e. the product of
  single-qubit exp(-i theta P/2) = cos(theta/2) I - i sin(theta/2) P.
  """
  t = psi.reshape((2,) * n)
  c, s = jnp.cos(theta / 2), jnp.sin(theta / 2)
  for j in range(n):
    t = c * t - 1j * s * _pauli(t, j, env)
  return t.reshape(-1)
