"""Batched linear-optics simulator: setups -> post-selected N-photon states.

Mode m = 2 p + s (path p, polarisation s: H = 0, V = 1). A device maps
a+_in -> sum_out B[out, in] a+_out on its modes; a setup's mode unitary is
U = U_T ... U_1. Each input branch b (one photon per path, modes in_b) gives
output amplitudes A(s) = sum_b c_b perm(U[out_s, in_b]) for every pattern s
with one photon per path (out_s[p] = 2p + s[p], path 0 most significant).
Post-selection keeps those 2^N amplitudes and renormalises (reference); the
coincidence probability P = sum_s |A(s)|^2 is returned as well.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import environments, permanent
from jaxlab.methods.dqs.setups import Setups


class SimResult(NamedTuple):
  """Simulator output for a batch.

  Attributes:
    psi: [B, 2^N] complex post-selected, renormalised state (0 if failed).
    prob: [B] coincidence (post-selection success) probability P.
    qfi: [B, 4] QFI of psi under the environments Z, X, Y, XX.
  """

  psi: jax.Array
  prob: jax.Array
  qfi: jax.Array


def _cdtype():
  return jax.dtypes.canonicalize_dtype(jnp.complex128)


def device_blocks(theta: jax.Array) -> jax.Array:
  """The 4x4 blocks of every device id on modes (p1H, p1V, p2H, p2V).

  Single-path devices (HWP, QWP, R) act on (p1H, p1V) only; their second
  path slot is a dummy path left untouched.

  Args:
    theta: [] waveplate angle in radians.

  Returns:
    [6, 4, 4] complex blocks indexed by device id (0 = identity).
  """
  cd = _cdtype()
  theta = jnp.asarray(theta, jax.dtypes.canonicalize_dtype(jnp.float64))
  c, s = jnp.cos(2 * theta).astype(cd), jnp.sin(2 * theta).astype(cd)
  r, i = 1 / np.sqrt(2), 1j
  eye2 = jnp.eye(2, dtype=cd)
  zero2 = jnp.zeros((2, 2), cd)

  def single(w):
    return jnp.block([[w, zero2], [zero2, eye2]])

  bs = r * jnp.array([[1, 0, i, 0], [0, 1, 0, i], [i, 0, 1, 0], [0, i, 0, 1]], cd)
  pbs = jnp.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], cd)
  hwp = single(jnp.stack([jnp.stack([c, s]), jnp.stack([s, -c])]))
  qwp = single(r * jnp.stack([jnp.stack([1 - i * c, -i * s]), jnp.stack([-i * s, 1 + i * c])]))
  refl = single(i * eye2)
  return jnp.stack([jnp.eye(4, dtype=cd), bs, pbs, hwp, qwp, refl])


def _device_rows(device: jax.Array, n_paths: int) -> jax.Array:
  """[4] distinct modes (p1H, p1V, qH, qV) a device row acts on."""
  dev_id, p1, p2 = device[0], device[1], device[2]
  two = (dev_id == C.BS) | (dev_id == C.PBS)
  q = jnp.where(two, p2, (p1 + 1) % n_paths)  # dummy distinct path for 1-path devices
  return jnp.stack([2 * p1, 2 * p1 + 1, 2 * q, 2 * q + 1])


def device_matrix(device: jax.Array, theta: jax.Array, n_paths: int) -> jax.Array:
  """The 2N x 2N mode matrix of one device row ``(id, p1, p2, k)``.

  Args:
    device: [4] int32 device row.
    theta: [] angle in radians.
    n_paths: N.

  Returns:
    [2N, 2N] complex, D[out, in].
  """
  idx = _device_rows(device, n_paths)
  e = jax.nn.one_hot(idx, 2 * n_paths, dtype=_cdtype())  # [4, 2N]
  block = device_blocks(theta)[device[0]]
  return jnp.eye(2 * n_paths, dtype=e.dtype) - e.T @ e + e.T @ block @ e


def setup_unitary(devices: jax.Array, angles: jax.Array, n_paths: int) -> jax.Array:
  """U = D_T ... D_1 for one setup ([T, 4] devices, [T] angles) -> [2N, 2N].

  D_t U only changes the 4 rows of D_t's modes, so each step is a [4, 4] @
  [4, 2N] update of those rows (equal to ``device_matrix(...) @ u``).
  """

  def body(u, dev_theta):
    dev, theta = dev_theta
    idx = _device_rows(dev, n_paths)
    block = device_blocks(theta)[dev[0]]
    return u.at[idx].set(block @ u[idx]), None

  u0 = jnp.eye(2 * n_paths, dtype=_cdtype())
  return jax.lax.scan(body, u0, (devices, angles))[0]


def input_branches(
  sources: jax.Array, n_paths: int, branch_bits: int | None = None
) -> tuple[jax.Array, jax.Array]:
  """The source product expanded into branches with one photon per path.

  Only DC0011 sources branch (HH or VV), so a setup with e entangling sources
  has 2^e branches. Branch b sets the r-th DC0011 source to bit r of b;
  ``branch_bits`` (static, >= e; default N/2) fixes the number of branches
  2^branch_bits, the surplus getting amplitude 0.

  Args:
    sources: [N/2] int32 source types.

  Returns:
    in_modes: [2^branch_bits, N] int32 input mode of each path's photon.
    amps: [2^branch_bits] complex branch amplitude c_b.
  """
  n_src = n_paths // 2
  nbits = n_src if branch_bits is None else branch_bits
  ent = sources == C.DC0011
  rank = jnp.cumsum(ent) - 1  # rank of each DC0011 source among them
  b = jnp.arange(2**nbits)[:, None]
  bits = (b >> jnp.maximum(rank, 0)[None, :]) & 1  # [nb, n_src]
  t = jnp.where(ent[None, :], bits, jnp.where(sources[None, :] == C.DC11, 1, 0))
  n_ent = jnp.sum(ent)
  valid = b[:, 0] < 2**n_ent
  amp = jnp.where(valid, (1 / np.sqrt(2)) ** n_ent, 0.0).astype(_cdtype())
  t_path = jnp.repeat(t, 2, axis=1)  # source i feeds paths 2i and 2i+1
  in_modes = 2 * jnp.arange(n_paths)[None, :] + t_path
  return in_modes.astype(jnp.int32), amp


def _signed_sums(cols: jax.Array) -> jax.Array:
  """[..., R, n] -> [..., R, 2^(n-1)]: sum_j delta_j cols[:, j], delta_0 = +1.

  Built by doubling: sign vector d has delta_j = -1 for bit (j-1) of d set,
  the order of `permanent.glynn_deltas`; 2^(n-1) adds per row.
  """
  out = cols[..., :1]
  for j in range(1, cols.shape[-1]):
    c = cols[..., j : j + 1]
    out = jnp.concatenate([out + c, out - c], axis=-1)
  return out


@functools.cache
def _glynn_signs(n: int) -> np.ndarray:
  """[2^(n-1)] prod(delta) / 2^(n-1), in `_signed_sums` order."""
  d = np.arange(2 ** (n - 1))
  bits = (d[:, None] >> np.arange(n - 1)[None, :]) & 1
  return (-1.0) ** bits.sum(1) / 2 ** (n - 1)


def _kron_rows(r: jax.Array) -> jax.Array:
  """[k, 2, S] -> [2^k, S]: products over paths for every polarisation pattern."""
  out = r[0]
  for p in range(1, r.shape[0]):
    out = (out[:, None, :] * r[p][None, :, :]).reshape(-1, r.shape[-1])
  return out


def amplitudes_factorized(u: jax.Array, in_modes: jax.Array, amps: jax.Array) -> jax.Array:
  """All 2^N post-selected amplitudes via Glynn with Kronecker-factored rows.

  Glynn's formula perm(A) = 2^-(n-1) sum_delta prod(delta) prod_i sum_j
  delta_j A_ij (delta on the input photons, delta_0 = 1) has row sums that,
  for output path p, depend only on that path's polarisation s_p, so prod_p
  over the 2^N patterns is a Kronecker product:
  A = sum_b c_b sum_delta w_delta kron_p r_p(delta, b). Split into two halves
  of the paths this is one matmul [2^(N/2), nb 2^(N-1)] @ [nb 2^(N-1), 2^(N/2)].

  Args:
    u: [2N, 2N] mode unitary.
    in_modes: [nb, N] input modes per branch.
    amps: [nb] branch amplitudes.

  Returns:
    [2^N] complex amplitudes (C order, path 0 most significant).
  """
  n = in_modes.shape[1]
  cols = jnp.swapaxes(u[:, in_modes], 0, 1)  # [nb, 2N, N]
  rows = _signed_sums(cols)  # [nb, 2N, 2^(N-1)] Glynn row sums
  rows = rows.reshape(rows.shape[0], n, 2, -1)  # [nb, path, pol, delta]
  h = n // 2
  left = jax.vmap(_kron_rows)(rows[:, :h])  # [nb, 2^h, D]
  right = jax.vmap(_kron_rows)(rows[:, h:])  # [nb, 2^(n-h), D]
  w = amps[:, None] * jnp.asarray(_glynn_signs(n), u.dtype)[None, :]  # [nb, D]
  out = jnp.einsum("bld,brd->lr", left * w[:, None, :], right)
  return out.reshape(-1)


@functools.cache
def output_modes(n: int) -> np.ndarray:
  """[2^N, N] output mode of each path for every pattern (path 0 = MSB)."""
  s = np.arange(2**n)
  bits = (s[:, None] >> np.arange(n)[::-1][None, :]) & 1
  return (2 * np.arange(n)[None, :] + bits).astype(np.int32)


def amplitudes_direct(
  u: jax.Array, in_modes: jax.Array, amps: jax.Array, method: str = "ryser"
) -> jax.Array:
  """Same as `amplitudes_factorized`, one N x N permanent per (pattern, branch)."""
  out = jnp.asarray(output_modes(in_modes.shape[1]))
  sub = u[out[:, None, :, None], in_modes[None, :, None, :]]  # [2^N, nb, N, N]
  return permanent.permanent(sub, method) @ amps


def post_select(amps: jax.Array, tol: float) -> tuple[jax.Array, jax.Array]:
  """Renormalised state (0 when P <= tol) and coincidence probability P."""
  prob = jnp.sum(jnp.abs(amps) ** 2)
  ok = prob > tol
  psi = jnp.where(ok, amps / jnp.sqrt(jnp.where(ok, prob, 1.0)), 0.0)
  return psi, prob


def simulate_one(
  sources: jax.Array,
  devices: jax.Array,
  angles: jax.Array,
  cfg: C.SimConfig,
  branch_bits: int | None = None,
) -> SimResult:
  """Simulates one setup (unbatched arrays) -> SimResult with no batch axis.

  ``branch_bits`` (static) must be >= the setup's number of DC0011 sources.
  """
  n = cfg.n_photons
  if cfg.angle_mode == "quantize45":  # exact k pi/4, as the reference's sympy angles
    angles = devices[:, 3] * (np.pi / 4)
  u = setup_unitary(devices, angles, n)
  in_modes, amps = input_branches(sources, n, branch_bits)
  if cfg.engine == "factorized":
    a = amplitudes_factorized(u, in_modes, amps)
  else:
    a = amplitudes_direct(u, in_modes, amps, cfg.permanent)
  psi, prob = post_select(a, cfg.success_tol)
  return SimResult(psi, prob, environments.qfi_all(psi, n))


@functools.cache
def make_simulator(cfg: C.SimConfig, branch_bits: int | None = None):
  """A jitted ``simulate(setups) -> SimResult`` vmapped over the batch axis.

  With ``branch_bits = e`` every setup must have <= e DC0011 sources; the
  default N/2 accepts any setup.
  """
  one = functools.partial(simulate_one, cfg=cfg, branch_bits=branch_bits)

  @jax.jit
  def simulate(setups: Setups) -> SimResult:
    return jax.vmap(one)(setups.sources, setups.devices, setups.angles)

  return simulate


def simulate(
  setups: Setups, cfg: C.SimConfig, batch_size: int = 256, group_branches: bool = True
) -> SimResult:
  """Simulates any number of setups in fixed-size padded chunks (host loop).

  With ``group_branches`` setups are grouped by their number e of DC0011
  sources and each group runs with 2^e branches (on average (4/3)^(N/2)
  instead of 2^(N/2)): one compile per (e, batch_size). The last chunk of a
  group is padded (to 8, 64 or batch_size: few shapes) by repeating its first setup.

  Returns:
    SimResult of numpy arrays, in the input order.
  """
  n = len(setups)
  n_ent = (np.asarray(setups.sources) == C.DC0011).sum(1)
  groups = np.unique(n_ent) if group_branches else [None]
  out = None
  for e in groups:
    members = np.flatnonzero(n_ent == e) if e is not None else np.arange(n)
    fn = make_simulator(cfg, None if e is None else int(e))
    for s in range(0, len(members), batch_size):
      idx = members[s : s + batch_size]
      size = next(b for b in (8, 64, batch_size) if b >= len(idx) or b == batch_size)
      pad = np.concatenate([idx, np.full(size - len(idx), idx[0])])
      res = jax.device_get(fn(setups.take(pad)))
      if out is None:
        out = [np.zeros((n,) + x.shape[1:], x.dtype) for x in res]
      for buf, x in zip(out, res):
        buf[idx] = x[: len(idx)]
  return SimResult(*out)


def mode_unitaries(setups: Setups, cfg: C.SimConfig) -> jax.Array:
  """[B, 2N, 2N] mode unitaries of a batch of setups."""
  angles = jnp.asarray(setups.angles)
  if cfg.angle_mode == "quantize45":
    angles = jnp.asarray(setups.devices)[..., 3] * (np.pi / 4)
  return jax.vmap(setup_unitary, in_axes=(0, 0, None))(
    jnp.asarray(setups.devices), angles, cfg.n_photons
  )
