"""Benchmark: APW on Adult, jaxlab (one compiled program) vs the released pattern.

The released pattern is a Python loop that refits scikit-learn's
LogisticRegression(max_iter=10000) each iteration and updates weights in numpy.

  1. T APW-EOp iterations (eta 1.2): sklearn loop vs jaxlab (cold refits as
     released, and the default warm start).
  2. A 16-value eta sweep: 16 sequential sklearn loops, 16 sequential jaxlab
     calls, and ONE vmapped jaxlab call.

Prints wall times and ratios. jaxlab times exclude compilation (printed apart).
Usage: python scripts/bench_apw.py [--iterations 200] [--sweep-iterations 10]
"""

import argparse
import time

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxlab.methods.apw import data as apw_data
from jaxlab.methods.apw import loop

GROUPS = ((1, 1), (1, 0), (0, 1), (0, 0))


def sklearn_apw_eop(d, eta: float, T: int) -> float:
  """The released equal-opportunity loop (numpy + sklearn); returns last test acc."""
  x, y, a, xt, yt = d.x_train, d.y_train, d.a_train, d.x_test, d.y_test
  pos = [(a == 1) & (y == 1), (a == 0) & (y == 1)]
  lam, s, acc = np.ones(2), np.ones(len(y)), 0.0
  for _ in range(T):
    clf = LogisticRegression(max_iter=10000).fit(x, y, s)
    yh = clf.predict(x)
    u = np.exp(-eta * np.abs(clf.predict_proba(x)[:, 0].astype(np.float32) - 0.5))
    s = np.ones(len(y))
    for g, m in enumerate(pos):
      s[m] = lam[g] * u[m] * m.sum() / u[m].sum()
    lam = lam * np.array([m.sum() * yh[y == 1].sum() / ((y == 1).sum() * yh[m].sum())
                          for m in pos])
    acc = (clf.predict(xt) == yt).mean()
  return acc


def timed(fn, *args, **kw):
  t0 = time.perf_counter()
  out = fn(*args, **kw)
  jax.block_until_ready(out)
  return time.perf_counter() - t0, out


def jax_run(cfg, data, etas):
  loop._compiled_sweep.cache_clear()
  loop._compiled_init.cache_clear()
  t_first, _ = timed(loop.run_sweep, cfg, data, etas)
  t, (_, h) = timed(loop.run_sweep, cfg, data, etas)
  return t, t_first - t, h


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--iterations", type=int, default=200)
  ap.add_argument("--sweep-iterations", type=int, default=10)
  ap.add_argument("--sweep-size", type=int, default=16)
  ap.add_argument("--sklearn-sweep-runs", type=int, default=16,
                  help="sequential sklearn runs timed (the rest extrapolated)")
  args = ap.parse_args()
  d1 = apw_data.adult()
  data = apw_data.stack([d1])
  T, Ts, E = args.iterations, args.sweep_iterations, args.sweep_size
  print(f"devices: {jax.devices()[0].device_kind} x{jax.device_count()}; Adult "
        f"{d1.x_train.shape}; T={T}; sweep {E} etas x {Ts} iterations")

  t_sk, acc_sk = timed(sklearn_apw_eop, d1, 1.2, T)
  print(f"[1] sklearn loop, {T} iterations: {t_sk:.1f} s (last acc {100 * acc_sk:.2f} %)")
  for name, cfg in (("cold refits (as released)", loop.APWConfig(kind="eop", iterations=T)),
                    ("warm start (default exp.)", loop.APWConfig(kind="eop", iterations=T,
                                                                 warm_start=True))):
    t, tc, h = jax_run(cfg, data, [1.2])
    print(f"    jaxlab {name}: {t:.1f} s (+{tc:.1f} s compile), last acc "
          f"{100 * h['acc'][0, 0, -1]:.2f} % -> {t_sk / t:.1f}x faster")

  etas = np.linspace(0.0, 3.0, E)
  cfg = loop.APWConfig(kind="eop", iterations=Ts, warm_start=True)
  t_vm, tc_vm, _ = jax_run(cfg, data, etas)
  t_seq = 0.0
  for e in etas:
    t, _ = timed(loop.run_sweep, cfg, data, [float(e)])  # compiled once for E=1
    t_seq += t
  k = min(args.sklearn_sweep_runs, E)
  t_sk_seq = sum(timed(sklearn_apw_eop, d1, float(e), Ts)[0] for e in etas[:k]) * E / k
  note = "" if k == E else f" (measured {k} runs, scaled to {E})"
  print(f"[2] {E}-eta sweep, {Ts} iterations each:")
  print(f"    sklearn, {E} sequential loops: {t_sk_seq:.1f} s{note}")
  print(f"    jaxlab, {E} sequential calls: {t_seq:.1f} s")
  print(f"    jaxlab, one vmapped call:    {t_vm:.1f} s (+{tc_vm:.1f} s compile)")
  print(f"    ratio vs sklearn: {t_sk_seq / t_vm:.1f}x; vs sequential jaxlab: "
        f"{t_seq / t_vm:.2f}x; incl. compile vs sklearn: {t_sk_seq / (t_vm + tc_vm):.1f}x")


if __name__ == "__main__":
  main()
