"""QFI tests: GHZ reaches N^2, product states give at most N, bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.dqs import environments as E


@pytest.mark.parametrize("n", [2, 4, 6, 8])
@pytest.mark.parametrize("env", ["Z", "X", "Y"])
def test_ghz_reaches_heisenberg_limit(n, env):
  psi = E.ghz_state(n, env)
  np.testing.assert_allclose(E.qfi(psi, env, n), n**2, rtol=1e-5)
  assert E.heisenberg_limit(n, env) == n**2


@pytest.mark.parametrize("n", [2, 4, 8])
def test_product_states_give_at_most_n(n):
  plus = np.tile([1.0, 1.0], (n, 1))
  np.testing.assert_allclose(E.qfi(E.product_state(plus), "Z", n), n, rtol=1e-5)
  np.testing.assert_allclose(E.qfi(E.product_state(np.tile([1.0, 1j], (n, 1))), "X", n), n, rtol=1e-5)
  rng = np.random.default_rng(n)
  for _ in range(10):
    q = rng.normal(size=(n, 2)) + 1j * rng.normal(size=(n, 2))
    for env in ("Z", "X", "Y"):
      assert float(E.qfi(E.product_state(q), env, n)) <= n + 1e-4


def test_qfi_matches_dense_variance_and_xx_bound():
  n = 4
  rng = np.random.default_rng(0)
  psi = rng.normal(size=2**n) + 1j * rng.normal(size=2**n)
  psi /= np.linalg.norm(psi)
  paulis = {"Z": np.diag([1, -1]), "X": np.array([[0, 1], [1, 0]]), "Y": np.array([[0, -1j], [1j, 0]])}

  def op(p, j):
    out = np.eye(1)
    for k in range(n):
      out = np.kron(out, paulis[p] if k == j else np.eye(2))
    return out

  dense = {p: 0.5 * sum(op(p, j) for j in range(n)) for p in "ZXY"}
  dense["XX"] = 0.5 * sum(op("X", i) @ op("X", j) for i in range(n) for j in range(i + 1, n))
  got = np.asarray(E.qfi_all(jnp.asarray(psi), n))
  for i, env in enumerate(["Z", "X", "Y", "XX"]):
    h = dense[env]
    want = 4 * (np.vdot(psi, h @ h @ psi) - np.vdot(psi, h @ psi) ** 2).real
    np.testing.assert_allclose(got[i], want, rtol=1e-5)
    ev = np.linalg.eigvalsh(h)
    np.testing.assert_allclose(E.heisenberg_limit(n, env), (ev.max() - ev.min()) ** 2, rtol=1e-9)
  assert E.heisenberg_limit(6, "XX") == 6**4 / 16
  assert float(E.qfi(jnp.zeros(16, jnp.complex64), "Z", 4)) == 0.0


def test_evolve_matches_expm():
  with jax.enable_x64(True):
    import scipy.linalg

    n, theta = 3, 0.37
    psi = E.ghz_state(n, "Z")
    h = np.diag([0.5 * sum(1 - 2 * ((s >> (n - 1 - j)) & 1) for j in range(n)) for s in range(2**n)])
    want = scipy.linalg.expm(-1j * theta * h) @ np.asarray(psi)
    np.testing.assert_allclose(E.evolve(psi, theta, "Z", n), want, atol=1e-12)
