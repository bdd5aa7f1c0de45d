"""The paper's ScienceQA protocol on a user's local data and LLaVA weights (``qvix-scienceqa``).

Items: ScienceQA image items (``jaxlab.data.load("scienceqa")``, a directory, or the
generated set), ``sample_num`` of them by a numpy permutation with seed 42 (the release uses
a torch split, which we cannot reproduce; the ids are recorded). Pre-questions: SmolLM2 (or
replayed ``subquestion`` fields, or a canned reply for smoke runs), cached on disk. Answers:
any ``LlavaForConditionalGeneration`` directory, greedy (the release's LLaVA sampled at
temperature 1; greedy is our deterministic choice). Scoring: the released whole-string
scorer plus the option-letter and closest-option variants.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.core.plot import lines
from jaxlab.data import cache_root
from jaxlab.methods.qvix import controls, llm, pipeline, prompts

RELEASED = {"scienceqa_img_avg_leaderboard": 55.0}  # ScienceQA leaderboard "QVix, zero-shot"
CANNED = ("Pre-question 1: What objects are in the image?\n"
          "Pre-question 2: Where is each object in the image?")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScienceQAConfig:
  data: str = "scienceqa"  # "scienceqa" (local copy), a directory, or "generated"
  split: str = "test"
  sample_num: int = 1000  # 0: every image item
  sample_seed: int = 42
  generated_n: int = 12
  llava: str = ""  # an HF LLaVA directory, or "tiny-random" (written under the run dir)
  wrap: str = "USER: <image>\n{} ASSISTANT:"  # LLaVA-1.5's conversation line
  llm: str = "smollm2-135m-instruct"  # or "replay" (subquestion fields) or "canned" (smoke)
  template: str = "hand_v1"
  prequestion_shots: int = 0  # the release: zero-shot; k: k hand-written demos first (option)
  shot_style: str = "chat"
  parse_mode: str = "strict"  # "lenient": also numbered / bulleted lines ending in "?"
  llm_max_new_tokens: int = 128
  max_new_tokens: int = 256  # the release's evaluator default
  conditions: tuple[str, ...] = ("baseline", "qvix")
  reply_mode: str = "raw"
  instruction: bool = False
  batch_size: int = 4
  llm_cache: str = ""  # default: $JAXLAB_CACHE/qvix_llm (or ~/.cache/jaxlab/qvix_llm)


def load_items(config: ScienceQAConfig, out_dir: pathlib.Path) -> list[dict]:
  """Image items as dicts (uint8 image, question string, answer text, choices, ...)."""
  from jaxlab.data import scienceqa  # noqa: PLC0415
  from jaxlab.data.loading import load  # noqa: PLC0415

  if config.data == "generated":
    dd = scienceqa.load(scienceqa.write_synthetic(out_dir / "data", n=config.generated_n))
  elif config.data == "scienceqa":
    dd = load("scienceqa")
  else:
    dd = scienceqa.load(config.data)
  if config.split not in dd:
    raise ConfigError(f"split {config.split!r} not in the data (has {sorted(dd)}).")
  ds = dd[config.split]
  idx = np.random.default_rng(config.sample_seed).permutation(len(ds))
  if config.sample_num:
    idx = np.sort(idx[:config.sample_num])
  rows = [ds[int(i)] for i in idx]
  for r in rows:
    r["image"] = np.asarray(r["image"].convert("RGB"))
  return rows


def _llm_fn(config: ScienceQAConfig):
  if config.llm == "canned":
    return lambda ps: [CANNED] * len(ps), "canned"
  if config.llm == "replay":
    return None, "replay"
  from jaxlab.models.loaders import load_model  # noqa: PLC0415

  cfg, params, tok = load_model(config.llm)
  dec = llm.Decoding(max_new_tokens=config.llm_max_new_tokens)
  return llm.decoder_llm(cfg, params, tok, dec), config.llm


def _lvlm(config: ScienceQAConfig, out_dir: pathlib.Path):
  from jaxlab.models.loaders.llava import load_llava  # noqa: PLC0415

  path = config.llava
  if not path:
    raise ConfigError("set llava=<an HF LlavaForConditionalGeneration directory> (or "
                      "'tiny-random' for a smoke run).")
  if path == "tiny-random":
    from jaxlab.models.loaders.llava_export import tiny_random_llava  # noqa: PLC0415

    path = str(out_dir / "tiny_llava")
    tiny_random_llava(path)
  cfg, params, tok, proc = load_llava(path)
  if tok is None:
    raise ConfigError(f"{path} has no tokenizer.json; the LVLM needs its tokenizer.")
  return pipeline.lvlm_answerer(cfg, params, tok, proc, wrap=lambda p: config.wrap.format(p),
                                max_new_tokens=config.max_new_tokens,
                                batch_size=config.batch_size)


def run_scienceqa(config: ScienceQAConfig, out_dir: pathlib.Path) -> dict:
  """Runs the conditions and writes answers.jsonl, accuracy.png; returns the summary."""
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  items = load_items(config, out_dir)
  gen_fn, model_id = _llm_fn(config)
  cache = (pathlib.Path(config.llm_cache).expanduser() if config.llm_cache
           else cache_root() / "qvix_llm")
  replies = llm.prequestions(items, config.template, gen_fn, model_id=model_id,
                             decoding=llm.Decoding(max_new_tokens=config.llm_max_new_tokens),
                             cache_dir=None if model_id == "canned" else cache,
                             shots=config.prequestion_shots, shot_style=config.shot_style)
  answer_fn = _lvlm(config, out_dir)
  instr = prompts.INSTRUCTION if config.instruction else None
  res = pipeline.run_conditions(items, replies, answer_fn, config.conditions,
                                reply_mode=config.reply_mode, instruction=instr,
                                parse_mode=config.parse_mode)
  for it in items:
    it["grade_band"] = controls.grade_band(it["grade"])
  summary = pipeline.summarize(res, items, group_key="subject")
  for name in res:
    c = res[name]["correct"]["whole"]
    summary[name]["by_grade"] = controls.breakdown(c, [it["grade_band"] for it in items])
  with open(out_dir / "answers.jsonl", "w") as f:
    for i, it in enumerate(items):
      f.write(json.dumps({"id": it["id"], "reply": replies[i], **{
        n: {"answer": r["answers"][i], "correct": bool(r["correct"]["whole"][i])}
        for n, r in res.items()}}) + "\n")
  names = list(res)
  lines(out_dir / "accuracy.png", list(range(len(names))),
        {"accuracy (whole-string)": [summary[n]["acc"] for n in names]},
        bands={"accuracy (whole-string)": (np.array([summary[n]["ci95"][0] for n in names]),
                                           np.array([summary[n]["ci95"][1] for n in names]))},
        xlabel="condition: " + ", ".join(names), ylabel="accuracy", title="qvix-scienceqa")
  compliance = [len(prompts.parse_prequestions(r, config.parse_mode)) for r in replies]
  return {"n_items": len(items), "item_ids": [it["id"] for it in items], "llm": model_id,
          "format_compliance_mean_prequestions": float(np.mean(compliance)),
          "conditions": summary, "released": RELEASED}
