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
from jaxlab.methods.self_consuming.loops import SCENARIOS
from jaxlab.methods.self_consuming.study import PROPORTIONAL, run_grid, summarise_grid
from experiments.self_consuming.plots import phase_report, plot_generations, plot_phase

DESCRIPTION = ("Self-consuming KDE loops (Fu et al. 2024): TV vs generation and a 10-generation"
               " lambda x n_synthetic phase-transition study")
CLAIM = (
  "TV(p_i, p*) stays controlled when the real proportion is large enough, and at a fixed real"
  " amount TV first rises then falls as synthetic data grows (phase transition). Checked by"
  " simulation with >= 100 seeds; the overlaid bound is jaxlab's scaffold, not the paper's"
  " theorem (its constants are unverified)."
)
NOTE = "Fu et al.'s theorem constants are unverified; the bound shown is our scaffold."


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
  """``base``: the phase grid (``base.n_real`` real rows at every lambda, ``base.generations``).

  ``lambdas`` weigh the real rows (PROPORTIONAL = -1: every row weighs the same);
  ``scenario_lambdas`` at ``scenario_n_synthetic`` drive the per-scenario curves,
  on the same ``base.n_real`` real rows (decoupled from lambda).
  """

  base: Config = Config(grid=Grid(size=512), seeds=100, generations=10,
                        n_synthetic=(0, 50, 200, 800, 1600, 6400))
  lambdas: tuple[float, ...] = (PROPORTIONAL, 0.5, 0.9)
  hump_generations: tuple[int, ...] = (1, 2, 5, 10)
  curve_sizes: tuple[int, ...] = (50, 100, 200, 400, 800, 1600, 3200)
  scenario_lambdas: tuple[float, ...] = (0.1, 0.3, 0.6, 1.0)
  scenario_n_synthetic: int = 200
  buckets: int = 3


def get_config(smoke: bool = False) -> Settings:
  if smoke:
    return Settings(base=Config(grid=Grid(size=128), seeds=8, generations=2, n_real=50,
                                n_synthetic=(0, 50, 400)),
                    lambdas=(PROPORTIONAL, 0.5), hump_generations=(1, 2), curve_sizes=(25, 50, 100),
                    scenario_lambdas=(0.3, 1.0), scenario_n_synthetic=50, buckets=1)
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
  # 2. the phase grid: seeds x lambda x n_s x generations; the proportional lane is the hump
  grid = run_grid(base, config.lambdas, base.n_synthetic, buckets=config.buckets, desc="kde-grid")
  tv_grid = grid["tv"]                              # [S, L, P, G+1]
  ns = np.array(base.n_synthetic)
  bar.update()
  result = {"eps_C": c, "eps_a": a, "seeds": base.seeds, "n_real": base.n_real,
            **summarise_grid(tv_grid, config.lambdas, ns)}
  title = f"KDE, n_real={base.n_real}, {base.seeds} seeds, 95% CI\n{NOTE}"
  plot_phase(out_dir / "phase_transition.png", tv_grid, config.lambdas, ns, title=title)
  plot_generations(out_dir / "tv_vs_generation_grid.png", tv_grid, config.lambdas, ns, title=title)
  prop = config.lambdas.index(PROPORTIONAL) if PROPORTIONAL in config.lambdas else 0
  hump = tv_grid[:, prop]                           # [S, P, G+1]
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
    se_diff = _se(diff)                              # 0 when the peak is n_s = 0 itself
    result[f"gen{g}_peak_z_paired"] = float(diff.mean() / se_diff) if se_diff > 0 else 0.0
    for s, m, e in zip(ns, mean, se):
      writer.write(int(s), {f"hump/gen{g}/tv": float(m), f"hump/gen{g}/se": float(e)})
    ys[f"scaffold bound (ours), gen {g}"] = scaffold_bound(c, a, base.n_real, np.maximum(ns, 1), g)
  x = np.maximum(ns, 1)
  _logx(out_dir / "tv_vs_synthetic.png", x, ys, bands, base)
  # 3. TV vs generation per scenario: lambda weighs the real rows; the real set keeps
  # base.n_real rows at every lambda (generation 0 is the same fit for all of them)
  lams, n_s = list(config.scenario_lambdas), config.scenario_n_synthetic
  for scen in SCENARIOS:
    cfg = dataclasses.replace(base, scenario=scen)
    tv = run_sweep(cfg, n_real=[base.n_real] * len(lams), n_synth=[n_s] * len(lams),
                   hp={"lambda": lams})["tv"]
    gens = np.arange(cfg.generations + 1)
    ys = {f"lambda={lam}": tv[:, i].mean(0) for i, lam in enumerate(lams)}
    bands = {f"lambda={lam}": (tv[:, i].mean(0) - 2 * _se(tv[:, i]), tv[:, i].mean(0) + 2 * _se(tv[:, i]))
             for i, lam in enumerate(lams)}
    lines(out_dir / f"tv_vs_generation_{scen}.png", gens, ys, bands=bands, xlabel="generation",
          ylabel="TV(p_i, p*)",
          title=f"{scen}, n_real={base.n_real}, n_s={n_s}, {base.seeds} seeds\n{NOTE}")
    for i, lam in enumerate(lams):
      result[f"{scen}_lambda{lam}_final_tv"] = float(tv[:, i, -1].mean())
    bar.update()
  bar.close()
  write_json(out_dir / "hump_tv.json", {"n_synthetic": ns, "tv_mean": hump.mean(0), "tv_se": _se(hump)})
  write_json(out_dir / "grid_tv.json", {"lambdas": list(config.lambdas), "n_synthetic": ns,
                                        "tv_mean": tv_grid.mean(0), "tv_se": _se(tv_grid)})
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
  return "\n".join([_hump_report(result), "", phase_report(result, "KDE phase grid")])


def _hump_report(result: dict) -> str:
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
