"""Bench: PLOT's OT logits, forward + backward, jaxlab (ott-jax, jit + vmap) vs PLOT's torch loop.

Shapes follow PLOT: B images x K classes, M = 49 local visual features, N = 4 prompts, d = 512.
Both sides compute the plan without gradient (PLOT's no_grad; jaxlab's stop-gradient) and
backpropagate ``sum_ij T_ij cos_ij`` into the features. The torch side is PLOT's pattern: a
Python loop over Sinkhorn iterations with batched matmuls over the B*K problems, stopping early
when the mean change of the scaling falls below 1e-2 (also timed with 100 fixed iterations).

  python scripts/bench_sinkhorn.py [--batch 32 --classes 10 --reps 5]
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np


def _time(fn, reps):
  fn()  # warm-up / compile
  out = []
  for _ in range(reps):
    t = time.perf_counter()
    fn()
    out.append(time.perf_counter() - t)
  return float(np.median(out))


def jax_step(img, txt, solver):
  from jaxlab.methods.enla import ot
  cfg = ot.OTConfig(epsilon=0.1, iterations=100, grad_mode="stopgrad", solver=solver)

  @jax.jit
  def step(img, txt):
    loss = lambda i, t: ot.ot_logits(i, t, cfg).sum()
    return jax.value_and_grad(loss, argnums=(0, 1))(img, txt)

  return lambda: jax.block_until_ready(step(img, txt))


def torch_step(img_np, txt_np, fixed: bool):
  import torch
  img = torch.tensor(img_np, requires_grad=True)  # [B, M, d]
  txt = torch.tensor(txt_np, requires_grad=True)  # [K, N, d]
  b, m, _ = img_np.shape
  k, n, _ = txt_np.shape

  def sinkhorn(kk, u, v, max_iter=100, thresh=1e-2):
    r, c = torch.ones_like(u), torch.ones_like(v)
    for _ in range(max_iter):
      r0 = r
      r = u / torch.matmul(kk, c.unsqueeze(-1)).squeeze(-1)
      c = v / torch.matmul(kk.permute(0, 2, 1), r.unsqueeze(-1)).squeeze(-1)
      if not fixed and (r - r0).abs().mean() < thresh:
        break
    return r.unsqueeze(-1) * kk * c.unsqueeze(-2)

  def step():
    i = torch.nn.functional.normalize(img, dim=-1)
    t = torch.nn.functional.normalize(txt, dim=-1)
    sim = torch.einsum("bmd,knd->bkmn", i, t).reshape(b * k, m, n)
    with torch.no_grad():
      kk = torch.exp(-(1.0 - sim) / 0.1)
      plan = sinkhorn(kk, torch.full((b * k, m), 1.0 / m), torch.full((b * k, n), 1.0 / n))
    loss = (plan * sim).sum()
    img.grad = txt.grad = None
    loss.backward()
    return loss

  return step


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--classes", type=int, default=10)
  p.add_argument("--local", type=int, default=49)
  p.add_argument("--prompts", type=int, default=4)
  p.add_argument("--dim", type=int, default=512)
  p.add_argument("--reps", type=int, default=5)
  a = p.parse_args()
  import torch
  rng = np.random.default_rng(0)
  img = rng.normal(size=(a.batch, a.local, a.dim)).astype(np.float32)
  txt = rng.normal(size=(a.classes, a.prompts, a.dim)).astype(np.float32)
  print(f"B={a.batch} K={a.classes} M={a.local} N={a.prompts} d={a.dim}; "
        f"jax {jax.__version__} ({jax.devices()[0].platform}), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)")
  times = {
    "jaxlab ott-jax (jit+vmap, 100 it)": _time(jax_step(jnp.asarray(img), jnp.asarray(txt),
                                                        "ott"), a.reps),
    "jaxlab pure-JAX log-domain (100 it)": _time(jax_step(jnp.asarray(img), jnp.asarray(txt),
                                                          "jax"), a.reps),
    "PLOT torch loop (early stop)": _time(torch_step(img, txt, fixed=False), a.reps),
    "PLOT torch loop (100 it)": _time(torch_step(img, txt, fixed=True), a.reps),
  }
  for name, t in times.items():
    print(f"{name:40s} {1e3 * t:9.1f} ms/step")
  base = times["jaxlab ott-jax (jit+vmap, 100 it)"]
  early = times["PLOT torch loop (early stop)"]
  print(f"ratio torch(early stop) / jaxlab ott: {early / base:.2f}x")
  print(f"ratio torch(100 it) / jaxlab ott:     {times['PLOT torch loop (100 it)'] / base:.2f}x")


if __name__ == "__main__":
  main()
