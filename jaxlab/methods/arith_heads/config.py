"""Configuration of the arithmetic-heads study."""

import dataclasses


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  """Arithmetic heads on SmolLM2 (spec h.H1). Defaults are the full study.

  Attributes:
    model: ``load_model`` name/path, or "tiny-random" (smoke).
    ops, templates: operators and templates for base accuracy.
    shots, draws: in-context examples per prompt; seeded shot draws per pair.
    n_patch: correct equation prompts used for the patching map.
    patch_batch: prompts per fast-path chunk (memory).
    include_mlps: SPT convention (later MLPs recompute).
    knock_ks, random_seeds, knock_kind, n_knock, knock_chunk: knockout settings.
    transfer_sets, transfer_k: (template, op) sets for head transfer; k.
    tune_k: heads tuned by the pinpoint arms; tune_arms: arms to run.
    tune_target: "chat" (zero-shot chat questions) or "equation" (zero-shot "A + B = ").
    tune_items, test_items: multi-digit training / held-out items (held-out: half pick the
      lr, half are reported); tune_ops, tune_digits: operators and operand digits.
    tune_steps, tune_batch: AdamW steps and batch; lr_*: per-arm learning-rate grids,
      each swept over ``tune_seeds`` seeds in one vmapped program.
    tune_target_len: supervised tail positions (answer digits fit in it).
    tune_mlps: MLP layers added by the "heads_mlp" arm.
    tune_lane_chunk: lanes per vmapped program (0: a whole arm in one; full-FT lanes carry
      the model and two AdamW moments each, so keep this small on a 24 GB machine).
    tune_ckpt_every: checkpoint period (steps) inside an arm, so a killed run resumes there
      (0: none; the finished arms are cached either way).
    tune_dtype: the training step's compute dtype, "float32" or "bfloat16" (mixed
      precision, ``tuning.loop.TrainConfig.compute_dtype``); evaluation stays in fp32.
    tune_seed_protocol: "grid" trains every (lr, seed) lane; "best" trains seed 0 of every lr,
      then the other seeds only at the lr seed 0 picks on validation
      (``tuning.loop.sweep_then_seeds``).
    kl_passages, kl_length: held-out text for KL / NLL.
    repatch: re-run the patching map after pinpoint tuning.
  """

  model: str = "smollm2-135m-instruct"
  ops: tuple[str, ...] = ("+", "-")
  templates: tuple[str, ...] = ("equation", "statement", "qa")
  shots: int = 4
  draws: int = 5
  seed: int = 0
  n_patch: int = 64
  patch_batch: int | None = 32
  include_mlps: bool = True
  knock_ks: tuple[int, ...] = (1, 2, 4, 8, 16)
  random_seeds: int = 5
  knock_kind: str = "mean"
  n_knock: int = 64
  knock_chunk: int = 4
  transfer_sets: tuple[tuple[str, str], ...] = (
    ("statement", "+"), ("qa", "+"), ("equation", "-"), ("equation", "*"), ("statement", "-"))
  transfer_k: int = 8
  tune_k: int = 8
  tune_arms: tuple[str, ...] = ("heads", "full", "lora", "random")
  tune_target: str = "chat"
  tune_items: int = 1500
  test_items: int = 400
  tune_ops: tuple[str, ...] = ("+", "-", "*", "/")
  tune_digits: int = 2
  tune_target_len: int = 8
  tune_seeds: int = 3
  tune_steps: int = 150
  tune_batch: int = 16
  lr_heads: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
  lr_full: tuple[float, ...] = (1e-5, 3e-5, 1e-4)
  lr_lora: tuple[float, ...] = (3e-4, 1e-3)
  weight_decay: float = 0.1
  tune_mlps: int = 1
  tune_lane_chunk: int = 3
  tune_ckpt_every: int = 25
  tune_dtype: str = "float32"
  tune_seed_protocol: str = "grid"
  kl_passages: int = 64
  kl_length: int = 128
  repatch: bool = True


TUNE_ARMS = ("heads", "heads_kv", "heads_mlp", "full", "lora", "lora_heads", "random")


def check(config: Config) -> None:
  """Refuses settings the tuning stage would only trip over hours later."""
  from jaxlab.core.errors import ConfigError  # noqa: PLC0415
  from jaxlab.tuning.loop import check_compute_dtype  # noqa: PLC0415

  bad = [a for a in config.tune_arms if a not in TUNE_ARMS]
  if bad:
    raise ConfigError(f"tune_arms: unknown {', '.join(map(repr, bad))}; use any of "
                      f"{', '.join(TUNE_ARMS)}.")
  if config.tune_seed_protocol not in ("grid", "best"):
    raise ConfigError(f"tune_seed_protocol={config.tune_seed_protocol!r}: use 'grid' (every lr "
                      "x seed) or 'best' (seeds at the lr seed 0 picks).")
  check_compute_dtype(config.tune_dtype, "tune_dtype")
  if config.tune_target not in ("chat", "equation"):
    raise ConfigError(f"tune_target={config.tune_target!r}: use 'chat' or 'equation'.")
