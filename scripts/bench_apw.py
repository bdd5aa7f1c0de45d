"""Benchmark: APW on Adult, jaxlab's compiled loop vs the release's sklearn refit loop.

The release refits scikit-learn's ``LogisticRegression(max_iter=10000)`` (lbfgs,
tol 1e-4) from scratch every iteration and updates the weights in numpy; that is
the baseline, timed on the same iterations.

  1. T APW-EOp iterations (eta 1.2): sklearn loop vs jaxlab (refits from scratch
     by dense Newton, as released; and the warm-started Newton-CG solver).
  2. A 16-value eta sweep x Ts iterations (warm-started Newton-CG,
     ``APWConfig(solver="cg")``): 16 sequential sklearn loops vs ONE vmapped
     jaxlab call, vs 16 sequential jaxlab calls, and vs the previous dense-Newton
     solver (one vmapped call).

Accuracy: the last-iteration test accuracy of every eta is compared with the
sklearn loop (the etas it ran) and with the dense-Newton solver run to its exact
optimum, plus the largest coefficient difference and the largest gradient norm
(sklearn's scale: its lbfgs stops at 1e-4).

Uses ``jaxlab.core.bench``: load average at start and end, compile time (first
call) beside steady state (median), one JSON record to $JAXLAB_BENCH_JSON.
Usage: python scripts/bench_apw.py [--iterations 10] [--sweep-iterations 5]
       [--sklearn-sweep-runs 2]
"""

import argparse
import time

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression

from jaxlab.core import bench
from jaxlab.methods.apw import data as apw_data
from jaxlab.methods.apw import loop


def sklearn_apw_eop(d, eta: float, T: int) -> float:
  """The released equal-opportunity loop (numpy + sklearn); returns the last test acc."""
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


def sweep_fn(cfg, data, etas):
  """A blocking call of one jaxlab sweep; the latest result is kept in ``out``."""
  out = {}

  def call():
    state, hist = loop.run_sweep(cfg, data, etas)
    out["state"], out["hist"] = jax.block_until_ready(state), hist

  return call, out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--iterations", type=int, default=10)
  ap.add_argument("--sweep-iterations", type=int, default=5)
  ap.add_argument("--sweep-size", type=int, default=16)
  ap.add_argument("--sklearn-sweep-runs", type=int, default=16,
                  help="sequential sklearn runs timed (the rest extrapolated)")
  ap.add_argument("--reps", type=int, default=3, help="timed repeats of each jaxlab call")
  ap.add_argument("--json", default=None)
  args = ap.parse_args()
  rec = bench.Recorder("apw", args=vars(args), json_path=args.json)
  d1 = apw_data.adult()
  data = apw_data.stack([d1])
  T, Ts, E = args.iterations, args.sweep_iterations, args.sweep_size
  print(f"devices: {jax.devices()[0].device_kind} x{jax.device_count()}; Adult "
        f"{d1.x_train.shape}; T={T}; sweep {E} etas x {Ts} iterations", flush=True)
  cg = dict(solver="cg", warm_start=True, warm_steps=3, cg_iters=4)

  # 1. One eta, T iterations.
  t0 = time.perf_counter()
  acc_sk = sklearn_apw_eop(d1, 1.2, T)
  t_sk = time.perf_counter() - t0
  print(f"[1] sklearn loop, {T} iterations: {t_sk:.2f} s (last acc {100 * acc_sk:.2f} %)")
  for name, cfg in (("dense Newton, refits from scratch (as released)",
                     loop.APWConfig(kind="eop", iterations=T)),
                    ("Newton-CG, warm start", loop.APWConfig(kind="eop", iterations=T, **cg))):
    call, out = sweep_fn(cfg, data, [1.2])
    t = bench.time_call(call, reps=args.reps)
    acc = out["hist"]["acc"][0, 0, -1]
    print(f"    jaxlab {name}: {t['steady_s']:.2f} s (first call {t['compile_s']:.2f} s), "
          f"last acc {100 * acc:.2f} % -> {t_sk / t['steady_s']:.1f}x")
    rec.row(f"APW-EOp eta 1.2, {T} it: jaxlab {name} vs sklearn loop", jaxlab_s=t["steady_s"],
            baseline_s=t_sk, compile_s=t["compile_s"], acc_diff_pts=100 * abs(acc - acc_sk))

  # 2. The eta sweep.
  etas = np.linspace(0.0, 3.0, E)
  cfg = loop.APWConfig(kind="eop", iterations=Ts, **cg)
  call, out = sweep_fn(cfg, data, etas)
  t_vm = bench.time_call(call, reps=args.reps)
  h_cg, st_cg = out["hist"], out["state"]

  ref_cfg = loop.APWConfig(kind="eop", iterations=Ts, warm_start=True)  # dense Newton
  call, out = sweep_fn(ref_cfg, data, etas)
  t_dense = bench.time_call(call, reps=args.reps)
  h_ref, st_ref = out["hist"], out["state"]

  def sequential():
    return [jax.block_until_ready(loop.run_sweep(cfg, data, [float(e)])[0]) for e in etas]

  t_seq = bench.time_call(sequential, reps=1)

  k = min(args.sklearn_sweep_runs, E)
  t0 = time.perf_counter()
  acc_sk = np.array([sklearn_apw_eop(d1, float(e), Ts) for e in etas[:k]])
  t_sk_seq = (time.perf_counter() - t0) * E / k
  note = "" if k == E else f" (measured {k} runs, scaled to {E})"

  acc_cg = h_cg["acc"][0, :, -1]
  d_sk = 100 * np.abs(acc_cg[:k] - acc_sk).max()
  d_ref = 100 * np.abs(acc_cg - h_ref["acc"][0, :, -1]).max()
  d_coef = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
               for a, b in zip(jax.tree.leaves(st_cg.params), jax.tree.leaves(st_ref.params)))
  gmax = float(h_cg["grad_norm"].max())
  print(f"[2] {E}-eta sweep, {Ts} iterations each:")
  print(f"    sklearn, {E} sequential loops: {t_sk_seq:.2f} s{note}")
  print(f"    jaxlab Newton-CG, one vmapped call:  {t_vm['steady_s']:.2f} s "
        f"(first call, incl. compile, {t_vm['compile_s']:.2f} s)")
  print(f"    jaxlab Newton-CG, {E} sequential calls: {t_seq['steady_s']:.2f} s "
        f"(first pass, incl. compile, {t_seq['compile_s']:.2f} s)")
  print(f"    jaxlab dense Newton (previous solver), one vmapped call: "
        f"{t_dense['steady_s']:.2f} s (first call {t_dense['compile_s']:.2f} s)")
  print(f"    accuracy, last iteration: max |acc diff| vs sklearn ({k} etas) {d_sk:.4f} pts; "
        f"vs dense Newton ({E} etas) {d_ref:.4f} pts; max |coef diff| vs dense Newton "
        f"{d_coef:.2e}; max grad norm {gmax:.1e} (sklearn's lbfgs stops at 1e-4)")
  print(f"    per-eta last acc (%): jaxlab {np.round(100 * acc_cg, 2).tolist()}")
  print(f"                         sklearn {np.round(100 * acc_sk, 2).tolist()}")
  common = dict(acc_diff_vs_sklearn_pts=d_sk, acc_diff_vs_dense_pts=d_ref, coef_diff=d_coef,
                max_grad_norm=gmax)
  rec.row(f"{E}-eta x {Ts} it sweep: one vmapped jaxlab call vs sklearn loops",
          jaxlab_s=t_vm["steady_s"], baseline_s=t_sk_seq, compile_s=t_vm["compile_s"],
          goal=10.0, **common)
  rec.row(f"{E}-eta x {Ts} it sweep: one vmapped call vs {E} sequential jaxlab calls",
          jaxlab_s=t_vm["steady_s"], baseline_s=t_seq["steady_s"], compile_s=t_vm["compile_s"],
          goal=4.0)
  rec.row(f"{E}-eta x {Ts} it sweep incl. compile vs sklearn loops",
          jaxlab_s=t_vm["compile_s"], baseline_s=t_sk_seq)
  rec.row(f"{E}-eta x {Ts} it sweep: Newton-CG vs the previous dense-Newton solver (vmapped)",
          jaxlab_s=t_vm["steady_s"], baseline_s=t_dense["steady_s"],
          compile_s=t_dense["compile_s"])
  rec.finish()


if __name__ == "__main__":
  main()
