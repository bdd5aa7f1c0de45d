"""The experiment registry: an explicit dict, name -> module path.

Each module exposes ``DESCRIPTION`` (one line), ``CLAIM`` (what the paper claims
and what the run checks), ``get_config(smoke: bool = False)`` returning a frozen
kw_only dataclass, and ``run(config, out_dir: pathlib.Path) -> dict`` returning
the summary numbers (JSON-serialisable). An optional ``report(result) -> str``
returns markdown for REPORT.md. See README "Adding an experiment".
"""

EXPERIMENTS: dict[str, str] = {
  # foundation
  "mnist-cnn": "experiments.mnist.cnn",
  # federated engine (issue 3)
  "fed-baselines-mnist": "experiments.federated.baselines_mnist",
  "fed-baselines-fmnist": "experiments.federated.baselines_fmnist",
  "fed-baselines-mnist-quick": "experiments.federated.baselines_mnist_quick",
  "fed-scaffold-lr": "experiments.federated.scaffold_lr",
  # FedImpro (issue 4)
  "fedimpro-mnist": "experiments.fedimpro.mnist",
  "fedimpro-fmnist": "experiments.fedimpro.fmnist",
  "fedimpro-fmnist-quick": "experiments.fedimpro.fmnist_quick",
  "fedimpro-cifar10": "experiments.fedimpro.cifar10",
  # FedFed (issue 17)
  "fedfed-fmnist-quick": "experiments.fedfed.fmnist_quick",
  "fedfed-fmnist": "experiments.fedfed.fmnist",
  "fedfed-mnist": "experiments.fedfed.mnist",
  "fedfed-cifar10": "experiments.fedfed.cifar10",
  # Twin-sight (issue 18)
  "twin-sight-fmnist": "experiments.twin_sight.fmnist",
  "twin-sight-fmnist-pd": "experiments.twin_sight.fmnist_pd",
  "twin-sight-fmnist-quick": "experiments.twin_sight.fmnist_quick",
  "twin-sight-fmnist-ablations": "experiments.twin_sight.fmnist_ablations",
  "twin-sight-cifar10": "experiments.twin_sight.cifar10",
  # LLM heads (issues 6, 7)
  "arith-heads-smollm2": "experiments.arith_heads.smollm2",
  "arith-heads-smollm2-quick": "experiments.arith_heads.smollm2_quick",
  "spt-smollm2": "experiments.spt.smollm2",
  "spt-smollm2-quick": "experiments.spt.smollm2_quick",
  # DQS (issue 8)
  "dqs-4photon": "experiments.dqs.photon4",
  "dqs-8photon": "experiments.dqs.photon8",
  # APW (issue 9)
  "apw-adult": "experiments.apw.adult",
  "apw-compas": "experiments.apw.compas",
  "apw-german": "experiments.apw.german",
  "apw-law": "experiments.apw.law",
  # self-consuming loops (issue 10)
  "self-consuming-kde": "experiments.self_consuming.kde",
  "self-consuming-diffusion": "experiments.self_consuming.diffusion",
  # CLIP + EnLa (issue 11)
  "clip-pretrain": "experiments.enla.clip_pretrain",
  "enla-bundled": "experiments.enla.bundled",
  "enla-bundled-full": "experiments.enla.bundled_full",
  "enla-clip-vitb16": "experiments.enla.clip_vitb16",
  # QVix (issue 19)
  "qvix-scienceqa": "experiments.qvix.scienceqa",
  "qvix-bundled": "experiments.qvix.bundled",
  "qvix-bundled-quick": "experiments.qvix.bundled_quick",
}

# `jaxlab reproduce --quick` runs these, each <= 5 minutes on 2 CPU cores;
# the value says whether it runs the experiment's smoke config.
QUICK: dict[str, bool] = {
  "mnist-cnn": True,
  "fed-baselines-mnist-quick": False,
  "fedimpro-fmnist-quick": False,
  "fedfed-fmnist-quick": False,
  "twin-sight-fmnist-quick": False,
  "arith-heads-smollm2-quick": False,
  "spt-smollm2-quick": False,
  "dqs-4photon": False,
  "apw-adult": False,
  "self-consuming-kde": False,
  "enla-bundled": False,
  "qvix-bundled-quick": False,
}
