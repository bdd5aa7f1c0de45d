"""Train the small CLIP-style stand-in on the bundled image sets and cache it."""

import dataclasses
import pathlib

from jaxlab.core.metrics import read_jsonl
from jaxlab.core.plot import lines
from jaxlab.models import clip_standin

DESCRIPTION = "Contrastive pretraining of the small CLIP stand-in (MNIST, Fashion, digits, shapes)"
CLAIM = ("No CLIP weights ship offline; a small two-tower CLIP (our Linen CLIP, CLIP BPE "
         "tokenizer, causal text tower from scratch) trained on bundled images with templated "
         "captions reaches useful zero-shot accuracy with 'a photo of a {class}.' prompts. "
         "The checkpoint (HF safetensors layout) is cached and reused by enla-bundled.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config:
  preset: str = "quick"  # "quick" (enla-bundled's stand-in) or "full" (enla-bundled-full's)
  standin: clip_standin.StandInConfig | None = None  # overrides the preset when set
  eval_limit: int = 1000


def get_config(smoke: bool = False) -> Config:
  if smoke:
    return Config(standin=clip_standin.StandInConfig(
      width=32, layers=1, heads=2, patch=16, text_width=32, text_layers=1, projection=16,
      steps=3, batch=16, per_dataset=64, datasets=("digits", "shapes")), eval_limit=50)
  return Config()


def _standin(config: Config) -> clip_standin.StandInConfig:
  if config.standin is not None:
    return config.standin
  return clip_standin.PRESETS[config.preset]


def run(config: Config, out_dir: pathlib.Path) -> dict:
  cfg = _standin(config)
  _, _, metrics = clip_standin.train(cfg, pathlib.Path(out_dir), eval_limit=config.eval_limit)
  rows = [r for r in read_jsonl(pathlib.Path(out_dir) / "metrics.jsonl") if "loss" in r]
  lines(pathlib.Path(out_dir) / "loss.png", [r["step"] for r in rows],
        {"contrastive loss": [r["loss"] for r in rows]}, xlabel="step", ylabel="loss",
        title="clip-pretrain")
  return {**metrics, "final_loss": rows[-1]["loss"], "cache": str(clip_standin.cache_path(cfg)),
          "tag": cfg.tag()}


def report(result: dict) -> str:
  rows = [f"| {k.split('/')[1]} | {100 * v:.1f} |" for k, v in result.items()
          if k.startswith("zero_shot/")]
  return "\n".join(["| dataset | zero-shot top-1 (%) |", "|---|---|", *rows,
                    "", f"Stand-in cached at `{result['cache']}`."])
