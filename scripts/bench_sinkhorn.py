"""Bench: PLOT's OT logits, forward + backward, jaxlab vs PLOT's torch loop.

Shapes follow PLOT: B images x K classes, M = 49 local visual features, N = 4 prompts, d = 512.
Every variant computes the plan without gradient (PLOT's no_grad; jaxlab's stop-gradient) and
backpropagates ``sum_ij T_ij cos_ij`` into the features. The torch side is PLOT's code: a Python
loop over kernel-mode Sinkhorn iterations with batched matmuls over the B*K problems, stopping
when ``mean |r - r_prev| < 1e-2`` over the whole batch (max 100), or after 100 fixed iterations.

Rows: jaxlab's default (``solver="batched"``) at PLOT's early stop and at 100 fixed iterations,
each against the torch loop with the same rule; then the other jaxlab options (log domain,
unrolled loop, the vmapped pure-JAX reference) and ott-jax with its own options (``lse_mode``,
``inner_iterations``, ``recenter_potentials``, ``threshold``). Each row prints its compile time,
its steady-state time, the iterations it ran and the max |plan - torch plan|.

Timing: ``--reps`` rounds; in each round every variant is called ``--calls`` times (median per
round), variants interleaved so that load changes hit all of them alike, with a 0.25 s pause
before each (torch's OpenMP workers spin for a while after a call and would steal a core from
the next variant); the row reports the median over rounds.

  python scripts/bench_sinkhorn.py [--batch 32 --classes 10 --reps 3 --calls 20 --no-ott]
"""

import argparse
import dataclasses
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core import bench
from jaxlab.methods.enla import ot


def jax_variant(img, txt, cfg: ot.OTConfig):
  """(step, plans): a jitted fwd+bwd step, and a function giving (plans [B, K, M, N], iters)."""
  @jax.jit
  def step(img, txt):
    loss = lambda i, t: ot.ot_logits(i, t, cfg).sum()
    return jax.value_and_grad(loss, argnums=(0, 1))(img, txt)

  def plans():
    if cfg.solver == "batched":
      p, it = jax.jit(ot.ot_plans, static_argnums=2)(img, txt, cfg)
      return np.asarray(p), int(it)
    if cfg.solver == "ott":
      def one(x, y):
        out = ot.ott_output(x, y, cfg)
        return out.matrix, out.n_iters
      f = jax.vmap(jax.vmap(one, (None, 0)), (0, None))
      p, it = jax.jit(f)(img, txt)
      return np.asarray(p), int(np.max(np.asarray(it)))
    f = jax.vmap(jax.vmap(lambda x, y: ot.transport_plan(x, y, cfg), (None, 0)), (0, None))
    return np.asarray(jax.jit(f)(img, txt)), cfg.iterations

  return (lambda: jax.block_until_ready(step(img, txt))), plans


def torch_variant(img_np, txt_np, fixed: bool):
  """PLOT's loop (plot-coop trainers/plot.py): (step, plans) like ``jax_variant``."""
  import torch
  img = torch.tensor(img_np, requires_grad=True)  # [B, M, d]
  txt = torch.tensor(txt_np, requires_grad=True)  # [K, N, d]
  b, m, _ = img_np.shape
  k, n, _ = txt_np.shape
  iters = [0]

  def sinkhorn(kk, u, v, max_iter=100, thresh=1e-2):
    r, c = torch.ones_like(u), torch.ones_like(v)
    for i in range(max_iter):
      r0 = r
      r = u / torch.matmul(kk, c.unsqueeze(-1)).squeeze(-1)
      c = v / torch.matmul(kk.permute(0, 2, 1), r.unsqueeze(-1)).squeeze(-1)
      iters[0] = i + 1
      if not fixed and (r - r0).abs().mean() < thresh:
        break
    return r.unsqueeze(-1) * kk * c.unsqueeze(-2)

  def forward():
    i = torch.nn.functional.normalize(img, dim=-1)
    t = torch.nn.functional.normalize(txt, dim=-1)
    sim = torch.einsum("bmd,knd->bkmn", i, t).reshape(b * k, m, n)
    with torch.no_grad():
      kk = torch.exp(-(1.0 - sim) / 0.1)
      plan = sinkhorn(kk, torch.full((b * k, m), 1.0 / m), torch.full((b * k, n), 1.0 / n))
    return plan, sim

  def step():
    plan, sim = forward()
    loss = (plan * sim).sum()
    img.grad = txt.grad = None
    loss.backward()
    return loss

  def plans():
    plan, _ = forward()
    return plan.detach().numpy().reshape(b, k, m, n), iters[0]

  return step, plans


def variants(img, txt, with_ott: bool):
  """name -> (rule, cfg): jaxlab variants; rule "plot" or "fixed" picks the torch baseline."""
  base = ot.OTConfig(epsilon=0.1, iterations=100, grad_mode="stopgrad")
  out = {
    "jaxlab default (batched), PLOT early stop": ("plot", dataclasses.replace(base, stop="plot")),
    "jaxlab default (batched), 100 it": ("fixed", base),
    "jaxlab batched log-domain, PLOT early stop": ("plot", dataclasses.replace(
      base, stop="plot", domain="log")),
    "jaxlab batched log-domain, 100 it": ("fixed", dataclasses.replace(base, domain="log")),
    "jaxlab batched, 100 it, unroll 5": ("fixed", dataclasses.replace(base, unroll=5)),
    "jaxlab pure-JAX reference (vmap, log), 100 it": ("fixed", dataclasses.replace(
      base, solver="jax")),
  }
  if with_ott:
    ott = dataclasses.replace(base, solver="ott")
    for name, opts in [("lse_mode=True (default)", ()),
                       ("lse_mode=False", (("lse_mode", False),)),
                       ("inner_iterations=100", (("inner_iterations", 100),)),
                       ("lse_mode=False, inner_iterations=100",
                        (("lse_mode", False), ("inner_iterations", 100))),
                       ("recenter_potentials=True", (("recenter_potentials", True),))]:
      out[f"ott-jax (vmap) {name}, 100 it"] = ("fixed", dataclasses.replace(ott, ott_options=opts))
    out["ott-jax (vmap) threshold=1e-2 (ott's own rule), <= 100 it"] = (
      "plot", dataclasses.replace(ott, ott_options=(("threshold", 1e-2),)))
  return out


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--local", type=int, default=49)
  p.add_argument("--prompts", type=int, default=4)
  p.add_argument("--dim", type=int, default=512)
  p.add_argument("--reps", type=int, default=3, help="interleaved rounds")
  p.add_argument("--calls", type=int, default=20, help="timed calls per variant per round")
  p.add_argument("--no-ott", action="store_true", help="skip the ott-jax variants")
  p.add_argument("--json", default=None)
  a = p.parse_args()
  rec = bench.Recorder("sinkhorn", args=vars(a), json_path=a.json)
  import torch
  torch.set_num_threads(os.cpu_count())
  rng = np.random.default_rng(0)
  img = rng.normal(size=(a.batch, a.local, a.dim)).astype(np.float32)
  txt = rng.normal(size=(a.classes, a.prompts, a.dim)).astype(np.float32)
  print(f"B={a.batch} K={a.classes} M={a.local} N={a.prompts} d={a.dim}, eps 0.1, float32; "
        f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads = os.cpu_count())", flush=True)

  runs = {"PLOT torch loop, early stop": ("plot", torch_variant(img, txt, fixed=False)),
          "PLOT torch loop, 100 it": ("fixed", torch_variant(img, txt, fixed=True))}
  ji, jt = jnp.asarray(img), jnp.asarray(txt)
  for name, (rule, cfg) in variants(ji, jt, not a.no_ott).items():
    runs[name] = (rule, jax_variant(ji, jt, cfg))

  info = {}
  for name, (rule, (step, plans)) in runs.items():
    t = bench.time_call(step, reps=1)
    plan, iters = plans()
    info[name] = {"rule": rule, "compile_s": t["compile_s"], "plan": plan, "iters": iters,
                  "rounds": []}
  for _ in range(a.reps):
    for name, (_, (step, _)) in runs.items():
      time.sleep(0.25)  # let torch's OpenMP workers stop spinning before the next variant
      info[name]["rounds"].append(bench.time_call(step, reps=a.calls)["steady_s"])

  torch_of = {"plot": info["PLOT torch loop, early stop"], "fixed": info["PLOT torch loop, 100 it"]}
  default_of = {"plot": info["jaxlab default (batched), PLOT early stop"],
                "fixed": info["jaxlab default (batched), 100 it"]}
  print("\nspeed-up = torch loop time (same stopping rule) / this; cost = this / jaxlab default "
        "(same rule); max|dT| vs the torch plan with the same rule")
  print(f"{'variant':62s} {'compile s':>9s} {'ms/step':>9s} {'iters':>5s} "
        f"{'max|dT| vs torch':>16s} {'speed-up':>8s} {'cost':>7s}")
  for name, r in info.items():
    steady = statistics.median(r["rounds"])
    ref = torch_of[r["rule"]]
    diff = float(np.abs(r["plan"] - ref["plan"]).max())
    ref_s = statistics.median(ref["rounds"])
    cost = steady / statistics.median(default_of[r["rule"]]["rounds"])
    print(f"{name:62s} {r['compile_s']:9.2f} {1e3 * steady:9.2f} {r['iters']:5d} "
          f"{diff:16.1e} {ref_s / steady:7.2f}x {cost:6.2f}x", flush=True)
    if name.startswith("PLOT torch"):
      continue
    default = name.startswith("jaxlab default")
    what = f"OT logits fwd+bwd, {name} vs torch loop" if default else f"info: {name}"
    rec.row(what, jaxlab_s=steady, baseline_s=ref_s, compile_s=r["compile_s"], iters=r["iters"],
            baseline_iters=ref["iters"], max_plan_diff=diff, cost_vs_default=cost,
            goal=3.0 if default else None)
  rec.finish()


if __name__ == "__main__":
  main()
