"""Benchmark: setups simulated per second, jaxlab batched simulator vs thewalrus loop.

The alternative a user would write: a Python loop over setups that builds the
mode unitary in numpy, calls ``thewalrus.perm`` for every (output pattern,
non-zero input branch) submatrix, post-selects and computes the QFI. jaxlab
simulates the whole batch in one jitted, vmapped program (complex128 for both;
complex64 jaxlab printed too). Both paths are checked to agree first.

Usage: python scripts/bench_dqs.py [--photons 4 6 8] [--loop-setups 40] [--batch 1024]
"""

import argparse
import itertools
import math
import time

import jax
import numpy as np
import thewalrus

from jaxlab.core import bench as B
from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs import simulator
from jaxlab.methods.dqs.setups import sample_setups

R2 = 1 / math.sqrt(2)


def numpy_unitary(devices: np.ndarray, n: int) -> np.ndarray:
  """U = D_T ... D_1 in numpy (quantize45 angles)."""
  u = np.eye(2 * n, dtype=complex)
  for d, p1, p2, k in devices:
    if d == 0:
      continue
    m = np.eye(2 * n, dtype=complex)
    c, s = math.cos(k * math.pi / 2), math.sin(k * math.pi / 2)
    h, v = 2 * p1, 2 * p1 + 1
    if d == C.BS:
      for x in (0, 1):
        a, b = 2 * p1 + x, 2 * p2 + x
        m[np.ix_([a, b], [a, b])] = np.array([[1, 1j], [1j, 1]]) * R2
    elif d == C.PBS:
      a, b = 2 * p1 + 1, 2 * p2 + 1
      m[np.ix_([a, b], [a, b])] = [[0, 1], [1, 0]]
    elif d == C.HWP:
      m[np.ix_([h, v], [h, v])] = [[c, s], [s, -c]]
    elif d == C.QWP:
      m[np.ix_([h, v], [h, v])] = np.array([[1 - 1j * c, -1j * s], [-1j * s, 1 + 1j * c]]) * R2
    elif d == C.REFL:
      m[np.ix_([h, v], [h, v])] = 1j * np.eye(2)
    u = m @ u
  return u


def numpy_qfi_z(psi: np.ndarray, n: int) -> float:
  s = np.arange(2**n)
  h = 0.5 * sum(1 - 2 * ((s >> (n - 1 - j)) & 1) for j in range(n))
  p = np.abs(psi) ** 2
  return float(4 * (np.sum(p * h**2) - np.sum(p * h) ** 2))


def thewalrus_setup(sources: np.ndarray, devices: np.ndarray, n: int):
  """One setup the per-setup way: amplitudes, P, QFI_Z."""
  u = numpy_unitary(devices, n)
  choices = [[(0, R2), (1, R2)] if t == C.DC0011 else [(int(t == C.DC11), 1.0)] for t in sources]
  outs = [2 * np.arange(n) + np.array(bits) for bits in itertools.product((0, 1), repeat=n)]
  amps = np.zeros(2**n, complex)
  for branch in itertools.product(*choices):
    t = np.repeat([b for b, _ in branch], 2)
    c = np.prod([a for _, a in branch])
    cols = u[:, 2 * np.arange(n) + t]
    for i, out in enumerate(outs):
      amps[i] += c * thewalrus.perm(cols[out])
  prob = float(np.sum(np.abs(amps) ** 2))
  psi = amps / np.sqrt(prob) if prob > 1e-12 else amps * 0
  return psi, prob, numpy_qfi_z(psi, n)


def bench(n: int, loop_setups: int, batch: int, rec: B.Recorder) -> None:
  cfg = C.SimConfig(n_photons=n)
  setups = sample_setups(np.random.default_rng(n), batch, cfg)
  with jax.enable_x64(True):
    t0 = time.perf_counter()
    ref = simulator.simulate(setups, cfg, batch_size=256)  # compiles every group shape
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = simulator.simulate(setups, cfg, batch_size=256)
    jax_rate = batch / (time.perf_counter() - t0)
  np.testing.assert_allclose(res.psi, ref.psi)
  simulator.simulate(setups, cfg, batch_size=256)  # complex64 compile
  t0 = time.perf_counter()
  simulator.simulate(setups, cfg, batch_size=256)
  jax32_rate = batch / (time.perf_counter() - t0)
  thewalrus_setup(setups.sources[0], setups.devices[0], n)  # numba warm-up
  t0 = time.perf_counter()
  for b in range(loop_setups):
    _psi, prob, qfi = thewalrus_setup(setups.sources[b], setups.devices[b], n)
    np.testing.assert_allclose(prob, res.prob[b], atol=1e-10)
    np.testing.assert_allclose(qfi, res.qfi[b, 0], atol=1e-8)
  loop_rate = loop_setups / (time.perf_counter() - t0)
  print(
    f"N={n}: jaxlab {jax_rate:9.1f} setups/s (complex128; complex64 {jax32_rate:9.1f}),"
    f" thewalrus loop {loop_rate:8.1f} setups/s, ratio {jax_rate / loop_rate:6.1f}x"
    f" (jaxlab first call incl. compile {compile_s:.1f} s)"
  )
  rec.row(f"setups/s N={n}, batched simulator vs thewalrus loop", jaxlab_s=1 / jax_rate,
          baseline_s=1 / loop_rate, goal=10.0, compile_s=compile_s, jaxlab_rate=jax_rate,
          baseline_rate=loop_rate, jaxlab_c64_rate=jax32_rate)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--photons", type=int, nargs="+", default=[4, 6, 8])
  ap.add_argument("--loop-setups", type=int, default=40)
  ap.add_argument("--batch", type=int, default=1024)
  args = ap.parse_args()
  rec = B.Recorder("dqs", vars(args))
  print(f"device: {jax.devices()[0].device_kind}; thewalrus {thewalrus.__version__}")
  for n in args.photons:
    bench(n, args.loop_setups, args.batch, rec)
  rec.finish()


if __name__ == "__main__":
  main()
