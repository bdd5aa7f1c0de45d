"""``qvix-bundled``: QVix and the B.5 controls on the offline stand-in LVLM.

Per training seed: train (or reuse from the cache) the stand-in, then answer held-out
generated items under every condition. Pre-questions come from the stand-in's own decoder
used text-only (SmolLM2 with its chat template: the paper's "LVLM's own LLM" variant),
greedy, cached on disk. Reported: whole-string accuracy per condition with Wilson 95% CIs
(pooled over seeds) and mean +- std over seeds, paired differences vs the baseline, the
option-letter and closest-option variants, a per-question-type breakdown, and the
pre-question format compliance. Resumable: stand-in stages resume from their orbax
checkpoints, replies come from the disk cache, and each (seed, prompt set) evaluation is saved
under ``<out>/eval/`` with a key of what it depends on, so a rerun redoes only unfinished work.

Pre-question writer options (defaults = the release): ``prequestion_shots`` hand-written
worked demonstrations before the released template (``prompts.PREQUESTION_DEMOS``; the
release is zero-shot), ``zeroshot_control`` (with shots > 0, also a "qvix_zeroshot"
condition from the released zero-shot prompt) and ``parse_mode`` ("strict" = the release's
"Pre-question k:" lines; "lenient" also takes numbered / bulleted questions).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import warnings

import jax
import numpy as np

from jaxlab.core.metrics import write_json
from jaxlab.core.plot import intervals, lines
from jaxlab.data import cache_root, scienceqa
from jaxlab.methods.qvix import controls, llm, pipeline, standin, standin_train
from jaxlab.methods.qvix.prompts import parse_prequestions
from jaxlab.models import lvlm

PROC = lvlm.ImageProcessing(shortest_edge=None, crop_hw=None)  # 32x32 scenes: normalise only


@dataclasses.dataclass(frozen=True, kw_only=True)
class BundledConfig:
  decoder: str = "smollm2-135m-instruct"  # or "tiny-random" (smoke: byte tokenizer)
  seeds: tuple[int, ...] = (0, 1, 2)
  n_caption: int = 512
  n_vqa: int = 1024
  align: standin_train.StageConfig = standin_train.StageConfig(stage="align", steps=150,
                                                               batch=8, lr=1e-3)
  tune: standin_train.StageConfig = standin_train.StageConfig(stage="tune", steps=300,
                                                              batch=8, lr=5e-4)
  n_eval: int = 300
  eval_seed: int = 10_000
  conditions: tuple[str, ...] = ("baseline", "qvix", "irrelevant", "filler", "answered_first")
  templates: tuple[str, ...] = ("hand_v1", "gptrewrite_v1", "gptrewrite_v2", "gptrewrite_v3")
  llm_max_new_tokens: int = 128
  prequestion_shots: int = 0  # 0: the released zero-shot prompt; k: k hand-written demos first
  shot_style: str = "chat"  # demos as prior chat turns ("chat") or one-message "prefix"
  zeroshot_control: bool = False  # with shots > 0: also "qvix_zeroshot" (released prompt)
  parse_mode: str = "strict"  # "lenient": also numbered / bulleted lines ending in "?"
  max_new_tokens: int = 8
  batch_size: int = 8
  cache: str = ""  # stand-in and LLM caches (default $JAXLAB_CACHE or ~/.cache/jaxlab)
  # "clip-standin" (quick CLIP stand-in, trained on first use), "clip-standin-full", "cached"
  # (newest cached one, else random), "random" (random frozen) or a local HF CLIP folder
  vision_tower: str = "clip-standin"

  def tag(self, clip_source: str) -> str:
    keep = {k: v for k, v in dataclasses.asdict(self).items()
            if k in ("decoder", "n_caption", "n_vqa", "align", "tune")}
    blob = json.dumps([keep, clip_source], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


CONTROLS = ("irrelevant", "filler", "answered_first")  # compared with QVix in the summary
RANDOM_TOWER = ("vision_tower=cached found no cached CLIP stand-in, so the stand-in LVLM uses a "
                "random frozen vision tower (recorded as vision_tower: random-frozen); run "
                "`jaxlab run clip-pretrain` first (a few minutes on 2 cores) or pass "
                "--set vision_tower=clip-standin to train it here.")


def _decoder(name: str):
  if name == "tiny-random":
    import tokenizers  # noqa: PLC0415

    from jaxlab.models import decoder  # noqa: PLC0415
    from jaxlab.models.loaders.llava_export import byte_tokenizer_json, tiny_config  # noqa
    from jaxlab.models.tokenizer import Tokenizer  # noqa: PLC0415

    js, vocab = byte_tokenizer_json()
    tok = Tokenizer(tokenizers.Tokenizer.from_str(js), bos_id=vocab - 3, eos_ids=(vocab - 2,),
                    add_bos=True)
    cfg = tiny_config(vocab, vocab - 1, d_model=32, layers=1).text
    return cfg, decoder.init_params(cfg, jax.random.key(0)), tok
  from jaxlab.models.loaders import load_model  # noqa: PLC0415

  return load_model(name)


def training_data(tok, cfg, config: BundledConfig, seed: int):
  """Caption (stage 1) and VQA (stage 2) datasets from generated scenes of `seed`."""
  caps = [(it["image"], "Describe the image.", " " + standin.caption(it["objects"]))
          for it in scienceqa.synthetic_items(config.n_caption, seed=100 * seed + 1)]
  vqa = [(it["image"], *standin.vqa_example(it))
         for it in scienceqa.synthetic_items(config.n_vqa, seed=100 * seed + 2)]
  return (standin_train.make_dataset(tok, cfg, caps),
          standin_train.make_dataset(tok, cfg, vqa))


def train_standin(config: BundledConfig, base, seed: int, root: pathlib.Path, clip_dir=None,
                  log=None):
  """(cfg, params, losses) of the seed's stand-in on the tower in ``clip_dir`` (None: random);
  resumes from / reuses ``root``."""
  dcfg, dparams, tok = base
  cfg, params, source = standin.build(dcfg, dparams, tok, jax.random.key(seed), clip_dir)
  cap, vqa = training_data(tok, cfg, config, seed)
  d = root / config.tag(source) / f"seed{seed}"
  params, l1 = standin_train.train_stage(cfg, params, cap, config.align, d, seed=seed, log=log)
  params, l2 = standin_train.train_stage(cfg, params, vqa, config.tune, d, seed=seed, log=log)
  return cfg, params, {"align": l1, "tune": l2, "vision_tower": source, "dir": str(d)}


def run_bundled(config: BundledConfig, out_dir: pathlib.Path, log=None) -> dict:
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  cache = pathlib.Path(config.cache).expanduser() if config.cache else cache_root()
  clip_dir = standin.clip_tower(config.vision_tower, out_dir)  # a bad value fails here, early
  if clip_dir is None and config.vision_tower == "cached":
    warnings.warn(RANDOM_TOWER, stacklevel=2)
  base = _decoder(config.decoder)
  dcfg, dparams, tok = base
  items = standin.eval_items(config.n_eval, config.eval_seed)
  gen_fn = llm.decoder_llm(dcfg, dparams, tok, llm.Decoding(
    max_new_tokens=config.llm_max_new_tokens))
  dec = llm.Decoding(max_new_tokens=config.llm_max_new_tokens)
  ask = lambda t, k: llm.prequestions(items, t, gen_fn, model_id=config.decoder, decoding=dec,
                                      cache_dir=cache / "qvix_llm", batch_size=config.batch_size,
                                      shots=k, shot_style=config.shot_style)
  replies = {t: ask(t, config.prequestion_shots) for t in config.templates}
  zero = None
  if config.zeroshot_control and config.prequestion_shots > 0:
    zero = ask(config.templates[0], 0)
    replies[f"{config.templates[0]}_zeroshot"] = zero
  per_seed, info = {}, {}
  for seed in config.seeds:
    cfg, params, info[seed] = train_standin(config, base, seed, cache / "qvix_standin",
                                            clip_dir, log)
    answer = pipeline.lvlm_answerer(cfg, params, tok, PROC, wrap=standin.WRAP.format,
                                    max_new_tokens=config.max_new_tokens,
                                    batch_size=config.batch_size)
    def run(rs, conds, label):
      key = _eval_key(config, info[seed]["dir"], conds, rs)
      return _saved_or_run(out_dir / "eval" / f"seed{seed}-{label}.json", key,
                           lambda: pipeline.run_conditions(
                             items, rs, answer, conds, parse_mode=config.parse_mode,
                             desc=f"seed {seed} {label}"))
    res = run(replies[config.templates[0]], config.conditions, config.templates[0])
    for t in config.templates[1:]:
      res[f"qvix_{t}"] = run(replies[t], ("qvix",), t)["qvix"]
    if zero is not None:
      res["qvix_zeroshot"] = run(zero, ("qvix",), "zeroshot")["qvix"]
    per_seed[seed] = res
  return _summarize(config, items, replies, per_seed, info, out_dir)


def _eval_key(config: BundledConfig, standin_dir: str, conditions, replies) -> str:
  """What an evaluation's answers depend on: stand-in, items, decoding, conditions, replies."""
  blob = json.dumps([standin_dir, config.n_eval, config.eval_seed, config.max_new_tokens,
                     config.batch_size, config.parse_mode, list(conditions), list(replies)])
  return hashlib.sha256(blob.encode()).hexdigest()


def _saved_or_run(path: pathlib.Path, key: str, run) -> dict:
  """``run()``'s conditions, saved to ``path``; read back instead when ``path`` has ``key``.

  This makes a long study resumable per (seed, prompt set): an interrupted run redoes only the
  evaluation it was in. A saved file with another key (other replies, stand-in or decoding) is
  recomputed and overwritten.
  """
  if path.exists():
    saved = json.loads(path.read_text())
    if saved.get("key") == key:
      return {n: {**r, "correct": {m: np.array(v, bool) for m, v in r["correct"].items()}}
              for n, r in saved["conditions"].items()}
  res = run()
  path.parent.mkdir(parents=True, exist_ok=True)
  write_json(path, {"key": key, "conditions": res})   # atomic; bool arrays become lists
  return res


def _summarize(config, items, replies, per_seed, info, out_dir: pathlib.Path) -> dict:
  names = list(next(iter(per_seed.values())))
  pooled = {n: np.concatenate([per_seed[s][n]["correct"]["whole"] for s in per_seed])
            for n in names}  # each condition's item-answers over all seeds, in one order
  rows = {}
  for n in names:
    accs = [float(per_seed[s][n]["correct"]["whole"].mean()) for s in per_seed]
    row = {"acc_mean": float(np.mean(accs)), "acc_std": float(np.std(accs)), "per_seed": accs,
           "ci95_pooled": controls.wilson(int(pooled[n].sum()), len(pooled[n])),
           **{f"acc_{m}": float(np.mean([per_seed[s][n]["correct"][m].mean()
                                         for s in per_seed])) for m in ("letter", "closest")},
           "by_type": controls.breakdown(pooled[n],
                                         [it["skill"] for it in items] * len(per_seed))}
    if n != "baseline":
      row["diff_vs_baseline_pooled"] = controls.paired_diff_ci(pooled[n], pooled["baseline"])
    rows[n] = row
  # B.5's reading: QVix against each control on the same item-answers (paired)
  vs_controls = {n: controls.paired_diff_ci(pooled["qvix"], pooled[n]) for n in CONTROLS
                 if "qvix" in names and n in names}
  parsed = {t: [parse_prequestions(r, config.parse_mode) for r in rs]
            for t, rs in replies.items()}
  comp = {t: float(np.mean([len(p) for p in ps])) for t, ps in parsed.items()}
  comp_any = {t: float(np.mean([bool(p) for p in ps])) for t, ps in parsed.items()}
  with open(out_dir / "answers.jsonl", "w") as f:
    for s, res in per_seed.items():
      for i, it in enumerate(items):
        f.write(json.dumps({"seed": s, "id": it["id"], "skill": it["skill"], **{
          n: {"answer": r["answers"][i], "ok": bool(r["correct"]["whole"][i])}
          for n, r in res.items()}}) + "\n")
  intervals(out_dir / "accuracy.png", names, [rows[n]["acc_mean"] for n in names],
            *zip(*(rows[n]["ci95_pooled"] for n in names)),
            xlabel="accuracy, pooled 95% Wilson CI", refs={
              "baseline": rows["baseline"]["acc_mean"], "chance": _chance(items)},
            title=f"qvix-bundled: {len(items)} items x seeds {list(per_seed)}")
  for s, i in info.items():
    lines(out_dir / f"loss_seed{s}.png", list(range(len(i["align"]) + len(i["tune"]))),
          {"loss": i["align"] + i["tune"]}, xlabel="step (align, then tune)", ylabel="CE")
  return {"n_items": len(items), "seeds": list(per_seed), "conditions": rows,
          "prequestions_parsed_mean": comp, "prequestions_parsed_any_frac": comp_any,
          "prequestion_writer": {"shots": config.prequestion_shots,
                                 "shot_style": config.shot_style,
                                 "parse_mode": config.parse_mode},
          "chance_acc": _chance(items), "qvix_vs_controls_pooled": vs_controls,
          "standin": {s: {"vision_tower": i["vision_tower"], "dir": i["dir"],
                          "final_align_loss": i["align"][-1] if i["align"] else None,
                          "final_tune_loss": i["tune"][-1] if i["tune"] else None}
                      for s, i in info.items()}}


def _chance(items) -> float:
  return float(np.mean([1 / len(it["choices"]) for it in items]))
