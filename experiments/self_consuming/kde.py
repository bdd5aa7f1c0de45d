"""Self-consuming KDE loops: TV vs generation per scenario, and the phase transition."""

import dataclasses
import pathlib

import numpy as np

from jaxlab.core.metrics import MetricsWriter, write_json
from jaxlab.core.plot import lines
from jaxlab.core.progress import progress
from jaxlab.methods.self_consuming import Config, run_sweep
from jaxlab.methods.self_consuming.bound import fit_rate, scaffold_bound
from jaxlab.methods.self_consuming.config import Grid
from jaxlab.methods.self_consuming.loops import SCENARIOS, lambda_pairs

DESCRIPTION = "Self-consuming KDE loops (Fu et al. 2024): TV vs generation and the rise-then-fall in synthetic data"
CLAIM = (
  "TV(p_i, p*) stays controlled when the real proportion is large enough, and at a fixed real"
  " amount TV first rises then falls as synthetic data grows (phase transition). Checked by"
  " simulation with >= 100 seeds; the overlaid bound is jaxlab's scaffold, not the paper's"
  " theorem (its constants are unverified)."
)
NOTE = "Fu et al.'s theorem constants are unverified; the bound shown is our scaffold."


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
  base: Config = Config(grid=Grid(size=512), seeds=100, generations=5,
                        n_synthetic=(0, 50, 200, 800, 1600, 6400))
  hump_generations: tuple[int, ...] = (1, 2, 5)
  curve_sizes: tuple[int, ...] = (50, 100, 200, 400, 800, 1600, 3200)
  mixed_n: int = 400
  lambdas: tuple[float, ...] = (0.1, 0.3, 0.6, 1.0)
  scenario_generations: int = 10


def get_config(smoke: bool = False) -> Settings:
  if smoke:
    return Settings(base=Config(grid=Grid(size=128), seeds=8, generations=2, n_real=50,
                                n_synthetic=(0, 50, 400)),
                    hump_generations=(1, 2), curve_sizes=(25, 50, 100), mixed_n=60,
                    lambdas=(0.3, 1.0), scenario_generations=3)
  return Settings()


def _se(x):
  return x.std(0, ddof=1) / np.sqrt(x.shape[0])


def run(config: Settings, out_dir: pathlib.Path) -> dict:
  base, writer = config.base, MetricsWriter(out_dir)
  bar = progress(total=2 + len(SCENARIOS), desc="self-consuming-kde")
  # 1. the real-only learning curve fixes eps(N) = C N^-a for the scaffold bound
  curve = run_sweep(dataclasses.replace(base, generations=0), n_real=config.curve_sizes,
                    n_synth=[0] * len(config.curve_sizes))["tv"][:, :, 0]
  c, a = fit_rate(np.array(config.curve_sizes), curve.mean(0))
  bar.update()
  # 2. the hump: fixed n_real, growing n_synthetic, several generations
  hump = run_sweep(base)["tv"]                      # [S, P, G+1]
  ns = np.array(base.n_synthetic)
  bar.update()
  result = {"eps_C": c, "eps_a": a, "seeds": base.seeds, "n_real": base.n_real}
  ys, bands = {}, {}
  for g in config.hump_generations:
    tv = hump[:, :, g]
    mean, se = tv.mean(0), _se(tv)
    ys[f"generation {g}"], bands[f"generation {g}"] = mean, (mean - 2 * se, mean + 2 * se)
    peak = int(np.argmax(mean))
    diff = tv[:, peak] - tv[:, 0]                    # paired over seeds
    result[f"gen{g}_tv_at_0"] = float(mean[0])
    result[f"gen{g}_tv_peak"] = float(mean[peak])
    result[f"gen{g}_peak_n_synthetic"] = int(ns[peak])
    result[f"gen{g}_tv_at_max"] = float(mean[-1])
    result[f"gen{g}_peak_z_paired"] = float(diff.mean() / _se(diff))
    for s, m, e in zip(ns, mean, se):
      writer.write(int(s), {f"hump/gen{g}/tv": float(m), f"hump/gen{g}/se": float(e)})
    ys[f"scaffold bound (ours), gen {g}"] = scaffold_bound(c, a, base.n_real, np.maximum(ns, 1), g)
  x = np.maximum(ns, 1)
  lines(out_dir / "tv_vs_synthetic.png", x, ys, bands=bands, xlabel="synthetic samples n_s (log)",
        ylabel="TV(p_i, p*)", title=f"n_real={base.n_real}, {base.seeds} seeds (±2 s.e.)\n{NOTE}")
  _logx(out_dir / "tv_vs_synthetic.png", x, ys, bands, base)
  # 3. TV vs generation for several real proportions, per scenario
  n_real, n_synth = lambda_pairs(config.lambdas, config.mixed_n)
  for scen in SCENARIOS:
    cfg = dataclasses.replace(base, scenario=scen, generations=config.scenario_generations)
    ns_s = n_synth if scen != "fully_synthetic" else [config.mixed_n] * len(n_real)
    tv = run_sweep(cfg, n_real=n_real, n_synth=ns_s)["tv"]
    gens = np.arange(cfg.generations + 1)
    ys = {f"lambda={lam}": tv[:, i].mean(0) for i, lam in enumerate(config.lambdas)}
    bands = {f"lambda={lam}": (tv[:, i].mean(0) - 2 * _se(tv[:, i]), tv[:, i].mean(0) + 2 * _se(tv[:, i]))
             for i, lam in enumerate(config.lambdas)}
    lines(out_dir / f"tv_vs_generation_{scen}.png", gens, ys, bands=bands, xlabel="generation",
          ylabel="TV(p_i, p*)", title=f"{scen}, n={config.mixed_n}, {base.seeds} seeds\n{NOTE}")
    for i, lam in enumerate(config.lambdas):
      result[f"{scen}_lambda{lam}_final_tv"] = float(tv[:, i, -1].mean())
    bar.update()
  bar.close()
  write_json(out_dir / "hump_tv.json", {"n_synthetic": ns, "tv_mean": hump.mean(0), "tv_se": _se(hump)})
  return result


def _logx(path, x, ys, bands, base):
  """Redraws the hump plot on a log x axis (the sizes span three decades)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(6.5, 4.2))
  for label, y in ys.items():
    style = "--" if label.startswith("scaffold") else "-o"
    (ln,) = ax.plot(x, y, style, label=label, ms=3)
    if label in bands:
      ax.fill_between(x, *bands[label], color=ln.get_color(), alpha=0.2)
  ax.set_xscale("log")
  ax.set(xlabel="synthetic samples n_s (0 plotted at 1)", ylabel="TV(p_i, p*)",
         title=f"KDE, n_real={base.n_real}, {base.seeds} seeds, ±2 s.e.\n{NOTE}")
  ax.title.set_fontsize(8)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def report(result: dict) -> str:
  rows = ["| generation | TV at n_s=0 | peak TV (n_s) | TV at largest n_s | paired z of the rise |",
          "| --- | --- | --- | --- | --- |"]
  for g in (1, 2, 5, 10):
    if f"gen{g}_tv_at_0" in result:
      rows.append(f"| {g} | {result[f'gen{g}_tv_at_0']:.4f} | {result[f'gen{g}_tv_peak']:.4f}"
                  f" ({result[f'gen{g}_peak_n_synthetic']}) | {result[f'gen{g}_tv_at_max']:.4f} |"
                  f" {result[f'gen{g}_peak_z_paired']:.1f} |")
  rows.append("")
  rows.append(f"Real-only rate fitted for the scaffold bound: eps(N) = {result['eps_C']:.3f}"
              f" N^-{result['eps_a']:.3f}. {NOTE}")
  return "\n".join(rows)
