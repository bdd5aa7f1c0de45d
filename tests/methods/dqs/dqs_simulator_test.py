"""Simulator tests: permanents, unitarity, spec vectors, slow-reference parity."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import permanent, simulator
from jaxlab.methods.dqs.setups import from_tuples, sample_setups

R2 = 1 / math.sqrt(2)


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def brute_permanent(a: np.ndarray) -> complex:
  n = a.shape[0]
  return sum(
    np.prod([a[i, p[i]] for i in range(n)]) for p in itertools.permutations(range(n))
  )


# --- slow, obviously-correct reference: expand creation-operator polynomials ---


def _mode(p, s):
  return 2 * p + s


def _substitution(dev, n):
  """a+_in -> [(out, coeff)] for each touched mode, straight from the spec table."""
  d, p1, p2, k = dev
  th = k * math.pi / 4
  c, s = math.cos(2 * th), math.sin(2 * th)
  sub = {}
  if d == C.BS:
    for x in (0, 1):
      a, b = _mode(p1, x), _mode(p2, x)
      sub[a] = [(a, R2), (b, 1j * R2)]
      sub[b] = [(a, 1j * R2), (b, R2)]
  elif d == C.PBS:
    sub[_mode(p1, 1)] = [(_mode(p2, 1), 1)]
    sub[_mode(p2, 1)] = [(_mode(p1, 1), 1)]
  elif d == C.HWP:
    h, v = _mode(p1, 0), _mode(p1, 1)
    sub[h] = [(h, c), (v, s)]
    sub[v] = [(h, s), (v, -c)]
  elif d == C.QWP:
    h, v = _mode(p1, 0), _mode(p1, 1)
    sub[h] = [(h, (1 - 1j * c) * R2), (v, -1j * s * R2)]
    sub[v] = [(h, -1j * s * R2), (v, (1 + 1j * c) * R2)]
  elif d == C.REFL:
    for x in (0, 1):
      sub[_mode(p1, x)] = [(_mode(p1, x), 1j)]
  return sub


def _apply(poly, sub):
  out = {}
  for mono, coef in poly.items():
    choices = [sub.get(m, [(m, 1)]) for m in mono]
    for combo in itertools.product(*choices):
      key = tuple(sorted(m for m, _ in combo))
      out[key] = out.get(key, 0) + coef * np.prod([c for _, c in combo])
  return out


def reference_state(row, n):
  """Post-selected renormalised state and P from a reference tuple list."""
  poly = {(): 1.0}
  for typ, a, b, _ in row[: n // 2]:
    pair = {
      C.DC0011: {(_mode(a, 0), _mode(b, 0)): R2, (_mode(a, 1), _mode(b, 1)): R2},
      C.DC00: {(_mode(a, 0), _mode(b, 0)): 1.0},
      C.DC11: {(_mode(a, 1), _mode(b, 1)): 1.0},
    }[typ]
    poly = {
      tuple(sorted(m1 + m2)): c1 * c2 for m1, c1 in poly.items() for m2, c2 in pair.items()
    }
  for dev in row[n // 2:]:
    poly = _apply(poly, _substitution(dev, n))
  amps = np.zeros(2**n, complex)
  for mono, coef in poly.items():
    paths = sorted(m // 2 for m in mono)
    if paths == list(range(n)):
      bits = {m // 2: m % 2 for m in mono}
      amps[int("".join(str(bits[p]) for p in range(n)), 2)] += coef
  prob = float(np.sum(np.abs(amps) ** 2))
  return (amps / np.sqrt(prob) if prob > 1e-12 else amps * 0), prob


# --- tests ---


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_permanent_equals_brute_force(n):
  rng = np.random.default_rng(n)
  a = rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))
  want = brute_permanent(a)
  for method in ("ryser", "glynn"):
    got = complex(permanent.permanent(jnp.asarray(a), method))
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_permanent_matches_thewalrus_and_batches():
  thewalrus = pytest.importorskip("thewalrus")
  rng = np.random.default_rng(0)
  a = rng.normal(size=(3, 7, 7)) + 1j * rng.normal(size=(3, 7, 7))
  got = np.asarray(permanent.permanent(jnp.asarray(a), "glynn"))
  want = [thewalrus.perm(x) for x in a]
  np.testing.assert_allclose(got, want, rtol=1e-10)


def test_every_device_matrix_is_unitary():
  matrix = jax.jit(lambda d, t: simulator.device_matrix(d, t, 4))
  blocks_fn = jax.jit(simulator.device_blocks)
  for theta in np.linspace(0, np.pi, 7):
    blocks = np.asarray(blocks_fn(jnp.asarray(theta)))
    for b in blocks:
      np.testing.assert_allclose(b @ b.conj().T, np.eye(4), atol=1e-12)
  for dev in [(1, 0, 3, 0), (2, 2, 1, 0), (3, 1, 1, 3), (4, 3, 3, 1), (5, 0, 0, 0), (0, 0, 0, 0)]:
    m = np.asarray(matrix(jnp.asarray(dev), jnp.asarray(dev[3] * np.pi / 4)))
    np.testing.assert_allclose(m @ m.conj().T, np.eye(8), atol=1e-12)


@pytest.mark.parametrize("mode", C.ANGLE_MODES)
def test_every_setup_unitary_is_unitary(mode):
  cfg = C.SimConfig(n_photons=6, angle_mode=mode)
  s = sample_setups(np.random.default_rng(1), 32, cfg)
  u = np.asarray(simulator.mode_unitaries(s, cfg))
  eye = np.eye(12)[None]
  np.testing.assert_allclose(u @ np.conj(np.swapaxes(u, 1, 2)), np.broadcast_to(eye, u.shape), atol=1e-10)


def test_hwp_angles_as_in_spec():
  # k=1 swaps H<->V, k=2 gives diag(-1, 1), k=3 -(swap), k=4 diag(1, -1).
  want = {1: [[0, 1], [1, 0]], 2: [[-1, 0], [0, 1]], 3: [[0, -1], [-1, 0]], 4: [[1, 0], [0, -1]]}
  for k, w in want.items():
    b = np.asarray(simulator.device_blocks(jnp.asarray(k * np.pi / 4)))[C.HWP][:2, :2]
    np.testing.assert_allclose(b, w, atol=1e-12)


SPEC_VECTORS = [
  # (n, rows, psi nonzeros {index: amp}, P, qfi Z/X/Y/XX or None)
  (2, [(6, 0, 1, 0)], {0: R2, 3: R2}, 1.0, (4, 4, 0, None)),
  (2, [(7, 0, 1, 0), (1, 0, 1, 0)], {}, 0.0, (0, 0, 0, 0)),
  (4, [(6, 0, 1, 0), (6, 2, 3, 0), (2, 1, 2, 0)], {0: R2, 15: R2}, 0.5, (16, 4, 4, 12)),
  (4, [(7, 0, 1, 0), (7, 2, 3, 0)] + [(4, p, p, 1) for p in range(4)], None, 1.0, (4, 4, 0, None)),
]


@pytest.mark.parametrize("engine", C.ENGINES)
@pytest.mark.parametrize("case", range(len(SPEC_VECTORS)))
def test_spec_vectors(engine, case):
  n, row, nonzero, prob, qfi = SPEC_VECTORS[case]
  cfg = C.SimConfig(n_photons=n, engine=engine)
  res = simulator.simulate(from_tuples([row], cfg), cfg)
  np.testing.assert_allclose(res.prob[0], prob, atol=1e-12)
  if nonzero is not None:
    want = np.zeros(2**n, complex)
    for i, a in nonzero.items():
      want[i] = a
    phase = np.vdot(want, res.psi[0]) if nonzero else 1.0
    np.testing.assert_allclose(res.psi[0], want * (phase / max(abs(phase), 1e-30)), atol=1e-12)
  for got, w in zip(res.qfi[0], qfi):
    if w is not None:
      np.testing.assert_allclose(got, w, atol=1e-9)


@pytest.mark.parametrize(
  "n,engine,permanent_method",
  [(2, "factorized", "ryser"), (4, "factorized", "ryser"), (4, "direct", "ryser"),
   (4, "direct", "glynn"), (6, "factorized", "ryser")],
)
def test_simulator_equals_creation_operator_reference(n, engine, permanent_method):
  cfg = C.SimConfig(n_photons=n, engine=engine, permanent=permanent_method, max_devices=8)
  setups = sample_setups(np.random.default_rng(10 + n), 12 if n < 6 else 4, cfg)
  res = simulator.simulate(setups, cfg, batch_size=8)
  survived = 0
  for b in range(len(setups)):
    psi, prob = reference_state(to_row(setups, b), n)
    np.testing.assert_allclose(res.prob[b], prob, atol=1e-12)
    np.testing.assert_allclose(res.psi[b], psi, atol=1e-10)
    survived += prob > 1e-12
  assert survived > 0  # the comparison exercised non-trivial states


def to_row(setups, b):
  from jaxlab.methods.dqs.setups import to_tuples

  return to_tuples(setups, b)


def test_engines_agree_at_n8():
  cfg = C.SimConfig(n_photons=8)
  setups = sample_setups(np.random.default_rng(3), 2, cfg)
  fast = simulator.simulate(setups, cfg, batch_size=2)
  slow_cfg = C.SimConfig(n_photons=8, engine="direct", permanent="glynn")
  slow = simulator.simulate(setups, slow_cfg, batch_size=2)
  np.testing.assert_allclose(fast.psi, slow.psi, atol=1e-10)
  np.testing.assert_allclose(fast.qfi, slow.qfi, atol=1e-8)
