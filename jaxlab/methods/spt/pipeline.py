"""The SPT study on one decoder: localise, knock out, tune arms, evaluate.

Stages are cached as JSON under ``out_dir/stages`` so an interrupted run resumes
at the stage it was in; inside a tuning arm it resumes from the arm's last checkpoint
(``StudyConfig.ckpt_every``).
"""

import dataclasses
import json
import pathlib
import warnings
from typing import Any

import jax
import numpy as np

from jaxlab.core import metrics as core_metrics
from jaxlab.core.progress import progress
from jaxlab.interp import attention, knockout
from jaxlab.methods.spt import evaluate, localize, metrics, prompts, questions, side_effects
from jaxlab.methods.spt import dialogue, proxies, train_data
from jaxlab.tuning import evaluate as tevaluate
from jaxlab.tuning import loop, verdict
from jaxlab.tuning.masks import as_head_mask, random_heads, top_heads


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig:
  """Sizes of every stage (defaults: the full CPU study).

  Attributes:
    n_localize: arithmetic dialogues for path patching.
    patch_metrics: metrics to patch with (the first ranks the heads).
    k: heads selected for SPT.
    knockout_ks: top-k sizes for the logit knockout probe.
    n_random_knockout: random-k draws per knockout probe.
    n_random_gen: random-k draws in the generation knockout.
    n_gen_knockout: evaluation questions decoded in the generation knockout (half
      arithmetic, half general).
    arms: tuning arms ("spt", "full", "lora", "lora_heads", "random").
    n_seeds: seeds per learning rate (random arm: one random head set per seed).
    first_seed: the seeds are ``first_seed .. first_seed + n_seeds - 1``. A lane depends
      only on its lr and seed, so ``--set first_seed=2 --set n_seeds=1`` adds seed 2 to a
      finished 2-seed study without retraining seeds 0-1 (its "seed 0" roles, the lr pick
      of ``seed_protocol="best"`` and the first decoded model, go to ``first_seed``).
    lr_spt, lr_full, lr_lora: per-arm learning-rate grids (spt, random and
      lora_heads use ``lr_spt``); every (lr, seed) lane of an arm trains in one
      vmapped program, ``lane_chunk`` lanes at a time (memory).
    seed_protocol: "grid" trains every (lr, seed) lane; "best" trains seed 0 of every lr,
      then the other seeds only at the lr that seed 0 picks on validation
      (``tuning.loop.sweep_then_seeds``: n_lr + n_seeds - 1 lanes per arm).
    n_train_arith: arithmetic questions in the training data (plus the first half
      of the general set); ``max_operand``: their operand range.
    neutral_openers: insist replies open without apologising (default; the
      released apologetic openers with False).
    steps, batch_size, weight_decay: tuning.
    tune_dtype: the training step's compute dtype, "float32" or "bfloat16" (mixed
      precision: bf16 products accumulated in fp32, fp32 master weights; about 1.4x faster
      on CPUs with AVX512-BF16, docs/spt.md). Proxies, KL and decoding stay in fp32.
    ckpt_every: orbax checkpoint period (steps) of each arm's lane chunk, under
      ``out_dir/arms/<arm>/<chunk>-<hash>/`` (0: none). A run killed mid-arm resumes from
      the last one; a chunk whose proxies are saved (``rows.json``) only restores its final
      parameters. The hash covers the lanes and the tuning settings, so a changed grid
      starts fresh instead of restoring the wrong lanes.
    n_eval: arithmetic evaluation questions (plus up to 40 general ones); the
      proxies split them into a validation half (picks the lr) and a test half.
    generate: also decode the challenge protocol (Confidence / Truthfulness) for
      each arm's best lr, seed 0 (slow on CPU; the proxies are always computed).
    gen_seeds: with ``generate``, decode the first ``gen_seeds`` seeds of the best lr (at most
      ``n_seeds``); the arm then also reports each seed's Confidence, keep and Truthfulness
      and their Student-t interval over seeds (``*_seeds``, ``*_seed_ci``). The first seed's full
      result stays the arm's ``eval``.
    gen_new: new-token budgets (A2, A3); the first answer is forced correct. A2's budget must
      cover the training target (about 30 tokens: an opener, the working, the letter), or a
      tuned model's reply is cut before its letter and Truthfulness is undercounted; the run
      warns when it is shorter. (24, 8), the default before 2026-12-06, was too short.
    heldout: also evaluate with a held-out challenge paraphrase.
    n_kl: 128-token held-out windows for the KL drift.
    n_probe: arithmetic questions for the letter-accuracy probe.
    repatch: re-run path patching after SPT.
    seed: data seed.
    model: "smollm2" (SmolLM2-135M-Instruct GGUF) or "tiny-random" (a randomly
      initialised 2-layer decoder with SmolLM2's tokenizer: smoke runs only).
  """
  n_localize: int = 24
  patch_metrics: tuple[str, ...] = ("sorry_glad", "spt_exact")
  k: int = 8
  knockout_ks: tuple[int, ...] = (8, 16)
  n_random_knockout: int = 5
  n_random_gen: int = 2
  n_gen_knockout: int = 32
  arms: tuple[str, ...] = ("spt", "random", "full", "lora")
  n_seeds: int = 3
  first_seed: int = 0
  lr_spt: tuple[float, ...] = (1e-3, 3e-3, 1e-2)
  lr_full: tuple[float, ...] = (1e-5, 3e-5, 1e-4)
  lr_lora: tuple[float, ...] = (3e-4, 1e-3)
  lane_chunk: int = 3
  seed_protocol: str = "grid"
  n_train_arith: int = 3000
  max_operand: int = 99
  neutral_openers: bool = True
  steps: int = 150
  batch_size: int = 8
  weight_decay: float = 0.1
  tune_dtype: str = "float32"
  ckpt_every: int = 25
  n_eval: int = 150
  generate: bool = True
  gen_seeds: int = 1
  gen_new: tuple[int, int] = (64, 32)
  heldout: bool = False
  n_kl: int = 8
  n_probe: int = 48
  repatch: bool = True
  seed: int = 0
  model: str = "smollm2"


class _Stages:
  """JSON-cached stages (resume granularity) plus a metrics.jsonl line per stage."""

  def __init__(self, out_dir: pathlib.Path, total: int):
    self.dir = out_dir / "stages"
    self.dir.mkdir(parents=True, exist_ok=True)
    self.writer = core_metrics.MetricsWriter(out_dir)
    self.writer.truncate(-1)
    self.bar = progress(total=total, desc="spt study")
    self.i = 0

  def __call__(self, name: str, fn) -> dict:
    path = self.dir / f"{name}.json"
    if path.exists():
      out = json.loads(path.read_text())
    else:
      self.bar.set_postfix(stage=name)
      out = core_metrics.to_python(fn())
      core_metrics.write_json(path, out)
    self.i += 1
    self.writer.write(self.i, {"stage": name, **_scalars(out)})
    self.bar.update(1)
    return out


def _scalars(d: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_scalars(v, f"{prefix}{k}/"))
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
      out[f"{prefix}{k}"] = v
  return out


def question_sets(sc: StudyConfig) -> dict[str, list]:
  """Disjoint question sets: localisation, training, evaluation, probes.

  Training questions never share a stem with evaluation or localisation questions.
  """
  gen = questions.general_mc()
  half = len(gen) // 2
  ev = questions.arithmetic_mc(sc.n_eval, seed=sc.seed + 3, ops="+-*",
                               max_operand=sc.max_operand)
  loc = questions.arithmetic_mc(sc.n_localize, seed=sc.seed + 1)
  seen = {q.question for q in ev + loc}
  train = [q for q in questions.arithmetic_mc(int(sc.n_train_arith * 1.2) + 8, seed=sc.seed + 2,
                                              ops="+-*", max_operand=sc.max_operand)
           if q.question not in seen][:sc.n_train_arith]
  return {
    "localize": loc,
    "train_arith": train,
    "train_general": gen[:half],
    "eval_arith": ev,
    "eval_general": gen[half:half + min(sc.n_eval, 40)],
    "probe_arith": questions.arithmetic_mc(sc.n_probe, seed=sc.seed + 4),
    "probe_general": gen[half:half + sc.n_probe],
  }


def behaviour(model, params, sets, sc: StudyConfig, *, intervene=None,
              base_params=None, windows=None, desc="eval") -> dict:
  """Challenge metrics (forced-correct first answer), probes and KL drift."""
  cfg, _, tok = model
  gen = evaluate.make_generator(cfg, params, intervene=intervene)
  qs = sets["eval_arith"] + sets["eval_general"]
  first = [dialogue.answer_text(q.answer) for q in qs]
  challenges = {"eval": prompts.CHALLENGE}
  if sc.heldout:
    challenges["heldout"] = prompts.HELDOUT_CHALLENGES[0]
  out = {}
  for label, ch in challenges.items():
    tr = evaluate.run_protocol(gen, tok, qs, challenge=ch, first=first,
                               max_new=(0,) + tuple(sc.gen_new), batch_size=min(16, len(qs)),
                               desc=f"{desc}/{label}")
    out[label] = metrics.score(tr)
    # on the proxies' val/test halves too: an lr can be picked on decoded validation questions
    out[label].update(metrics.score_parts(tr, split_halves(qs, seed=sc.seed)))
    out[label]["examples"] = [t.second for t in tr[:3]]
    # every dialogue (first, challenge reply, final reply), so a judge can be re-run later
    out[label]["replies"] = [[t.first, t.second, t.final] for t in tr]
  if intervene is None:
    out["acc_arith"] = side_effects.letter_accuracy(cfg, params, tok, sets["probe_arith"])
    out["acc_general"] = side_effects.letter_accuracy(cfg, params, tok, sets["probe_general"])
  if base_params is not None:
    out["drift"] = side_effects.kl_drift(cfg, base_params, params, windows)
  return out


def _localize_stage(model, sets, sc, out_dir) -> dict:
  cfg, params, tok = model
  res = localize.localize(cfg, params, tok, sets["localize"], metrics=sc.patch_metrics)
  out = {}
  for name, r in res.items():
    np.save(out_dir / f"scores_{name}.npy", r["scores"])
    attention.head_heatmap(out_dir / f"scores_{name}.png", r["scores"],
                           title=f"SmolLM2 path patching ({name})")
    out[name] = {"gap": r["gap"], "noise": r["noise"], "m_ref": float(np.mean(r["m_ref"])),
                 "m_cf": float(np.mean(r["m_cf"])),
                 "top": top_heads(r["scores"], sc.k),
                 "concentration": float(_imetrics().concentration(r["scores"], sc.k))}
  rank = sc.patch_metrics[0]
  heads = top_heads(np.load(out_dir / f"scores_{rank}.npy"), sc.k)
  core_metrics.write_json(out_dir / "selected_heads.json",
                          {"metric": rank, "k": sc.k, "heads": heads,
                           "gap": res[rank]["gap"], "noise": res[rank]["noise"]})
  if len(sc.patch_metrics) > 1:
    a, b = (np.load(out_dir / f"scores_{m}.npy") for m in sc.patch_metrics[:2])
    out["spearman_first_two"] = _imetrics().spearman(a, b)
  out["heads"] = heads
  return out


def _imetrics():
  from jaxlab.interp import metrics as im  # pylint: disable=import-outside-toplevel
  return im


def _knockout_stage(model, sets, sc, heads, scores) -> dict:
  cfg, params, tok = model
  L, H = cfg.n_layers, cfg.n_heads
  masks = [np.zeros((L, H), np.float32)]
  names = ["none"]
  for k in sc.knockout_ks:
    masks.append(knockout.top_k_mask(scores, k))
    names.append(f"top{k}")
    rnd = knockout.random_k_masks(sc.n_random_knockout, k, L, H, seed=100 + k)
    masks += list(rnd)
    names += [f"random{k}_s{s}" for s in range(sc.n_random_knockout)]
  probe = localize.knockout_probe(cfg, params, tok, sets["localize"], np.stack(masks))
  out = {"probe": {n: {"sorry_top1": float(a), "sorry_glad": float(b)} for n, a, b in
                   zip(names, probe["sorry_top1"], probe["sorry_glad"])}}
  gen_masks = {"none": None, f"top{sc.k}": as_head_mask(heads, L, H)}
  for s in range(sc.n_random_gen):
    gen_masks[f"random{sc.k}_s{s}"] = as_head_mask(random_heads(200 + s, L, H, sc.k), L, H)
  qs = (sets["eval_arith"][:sc.n_gen_knockout // 2]
        + sets["eval_general"][:sc.n_gen_knockout - sc.n_gen_knockout // 2])
  first = [dialogue.answer_text(q.answer) for q in qs]
  gen_out = {}
  for name, hm in gen_masks.items():
    iv = None if hm is None else localize.knockout_generator_intervention(
      cfg, params, tok, sets["localize"], hm)
    tr = evaluate.run_protocol(evaluate.make_generator(cfg, params, intervene=iv), tok, qs,
                               first=first, max_new=(0, sc.gen_new[0], 0),
                               batch_size=min(16, len(qs)),
                               desc=f"knockout/{name}")
    s = metrics.score(tr)
    gen_out[name] = {"apology_rate": s["apology_rate"], "admit_rate": s["admit_rate"],
                     "switch_rate": s["switch_rate"]}
  out["generation"] = gen_out
  return out


def _arm_lanes(sc: StudyConfig, name: str, cfg, heads) -> tuple[loop.Arm, list[loop.Lane]]:
  """The arm and its (lr, seed[, heads]) lanes."""
  seeds = range(sc.first_seed, sc.first_seed + sc.n_seeds)
  grid = lambda lrs: [loop.Lane(lr, s) for lr in lrs for s in seeds]
  if name == "spt":
    return loop.Arm(name="spt", heads=tuple(heads)), grid(sc.lr_spt)
  if name == "random":
    return loop.Arm(name="random", heads=tuple(heads)), [
      loop.Lane(lr, s, heads=tuple(random_heads(300 + s, cfg.n_layers, cfg.n_heads, sc.k)))
      for lr in sc.lr_spt for s in seeds]
  if name == "full":
    return loop.Arm(name="full", kind="full"), grid(sc.lr_full)
  if name == "lora":
    return loop.Arm(name="lora", kind="lora"), grid(sc.lr_lora)
  if name == "lora_heads":
    return loop.Arm(name="lora_heads", kind="lora", heads=tuple(heads)), grid(sc.lr_spt)
  from jaxlab.core import errors  # pylint: disable=import-outside-toplevel
  raise errors.ConfigError(f"arm {name!r}: use spt, random, full, lora or lora_heads.")


def evaluation_data(tok, sets, sc: StudyConfig) -> dict:
  """Proxy inputs: challenge prompts and held-out insist conversations (eval questions)."""
  qs = sets["eval_arith"] + sets["eval_general"]
  return {"qs": qs, "prompts": proxies.challenge_prompts(tok, qs),
          "insist": proxies.insist_set(tok, qs, seed=sc.seed),
          **split_halves(qs, seed=sc.seed)}


def split_halves(qs, seed: int = 0) -> dict[str, np.ndarray]:
  """Validation / test halves of the evaluation questions, stratified by (source, answer letter).

  The generated questions rotate the correct letter with the index, so an even/odd split
  (used before 2026-12-06) put A/C answers in one half and B/D in the other: a tuned model's
  letter preference then moved the two halves apart. Each (source, letter) stratum is shuffled
  with `seed` and dealt alternately, continuing the alternation across strata.

  Returns:
    {"val": sorted indices, "test": sorted indices}; sizes differ by at most 1.
  """
  rng = np.random.default_rng(seed)
  strata: dict = {}
  for i, q in enumerate(qs):
    strata.setdefault((q.source, q.answer), []).append(i)
  halves, turn = ([], []), 0
  for key in sorted(strata):
    for i in rng.permutation(strata[key]):
      halves[turn].append(int(i))
      turn ^= 1
  return {"val": np.sort(halves[0]), "test": np.sort(halves[1])}


def proxy_row(cfg, params, tok, ev: dict, *, base=None, windows=None) -> dict:
  """Per-question P(correct letter after the challenge), insist CE, and KL drift."""
  p = proxies.p_correct_after_challenge(cfg, params, tok, ev["qs"], ev["prompts"])
  ce = proxies.insist_ce(cfg, params, ev["insist"])
  out = {"p_correct": p.tolist(), "insist_ce": ce.tolist(),
         "val_p_correct": float(p[ev["val"]].mean())}
  if base is not None:
    out.update(side_effects.kl_drift(cfg, base, params, windows))
  return out


def _summarize_lanes(lanes, rows, ev, best: float | None = None) -> dict:
  """Best lr (validation P(correct), unless ``best`` is given), then test-half means with 95%
  CIs."""
  by_lr = {}
  for ln, r in zip(lanes, rows):
    by_lr.setdefault(ln.lr, []).append(r)
  per_lr = {f"{lr:g}": {"val_p_correct": float(np.mean([r["val_p_correct"] for r in rs])),
                        "test_p_correct": float(np.mean([np.asarray(r["p_correct"])[ev["test"]]
                                                         .mean() for r in rs])),
                        "kl": float(np.mean([r["kl"] for r in rs])), "n_seeds": len(rs)}
            for lr, rs in by_lr.items()}
  if best is None:
    best = max(by_lr, key=lambda lr: per_lr[f"{lr:g}"]["val_p_correct"])
  rs = by_lr[best]
  p = np.mean([np.asarray(r["p_correct"])[ev["test"]] for r in rs], 0)  # per question
  ce = np.mean([np.asarray(r["insist_ce"])[ev["test"]] for r in rs], 0)
  per_seed = [float(np.asarray(r["p_correct"])[ev["test"]].mean()) for r in rs]
  return {"best_lr": best, "per_lr": per_lr, "n_seeds": len(rs),
          "p_correct": tevaluate.mean_ci(p), "insist_ce": tevaluate.mean_ci(ce),
          "kl": tevaluate.seed_ci([r["kl"] for r in rs]),  # over seeds: Student-t
          "p_correct_seeds": per_seed, "p_correct_seed_ci": tevaluate.seed_ci(per_seed)}


_SEED_METRICS = ("confidence", "confidence_keep", "truthfulness", "switch_rate")


def _seed_behaviour(evals: list[dict]) -> dict:
  """Decoded metrics of several seeds: the per-seed values and a Student-t interval."""
  out = {}
  for k in _SEED_METRICS:
    vals = [float(e[k]) for e in evals]
    out[f"{k}_seeds"], out[f"{k}_seed_ci"] = vals, tevaluate.seed_ci(vals)
  return out


def _arm_stage(model, sets, sc, name, heads, data, windows, ev, out_dir) -> dict:
  cfg, params, tok = model
  arm, lanes = _arm_lanes(sc, name, cfg, heads)
  tc = loop.TrainConfig(steps=sc.steps, batch_size=sc.batch_size, weight_decay=sc.weight_decay,
                        target_len=data["target_len"], ckpt_every=sc.ckpt_every,
                        compute_dtype=sc.tune_dtype)
  arrays = {k: v for k, v in data.items() if k != "target_len"}
  kw = dict(lane_chunk=sc.lane_chunk, out_dir=pathlib.Path(out_dir) / "arms" / name,
            desc=f"tune {name}", keep=lambda i, ln: ln.seed < sc.first_seed + sc.gen_seeds,
            evaluate=lambda tuned: proxy_row(cfg, tuned, tok, ev, base=params, windows=windows))
  lanes, res, chosen = loop.sweep_lanes(cfg, params, arm, arrays, lanes, tc, **kw,
                                        protocol=sc.seed_protocol,
                                        score=lambda r: r["val_p_correct"])
  rows = res.rows
  losses = [[float(l[0]), float(l[-1])] for l in res.losses]
  kept = {(lanes[i].lr, lanes[i].seed): p for i, p in res.kept.items()}
  info = {"trainable": res.trainable, "start_layer": res.start_layer}
  out = {**info, **_summarize_lanes(lanes, rows, ev, best=chosen),
         "loss_first_last": losses, "lanes": [[ln.lr, ln.seed] for ln in lanes]}
  tuned = kept[(out["best_lr"], sc.first_seed)]
  if sc.generate:
    out.update(behaviour(model, tuned, sets, sc, base_params=params, windows=windows, desc=name))
    if sc.gen_seeds > 1:
      more = [behaviour(model, kept[(out["best_lr"], s)], sets, sc, desc=f"{name} seed {s}")
              for s in range(sc.first_seed + 1, sc.first_seed + sc.gen_seeds)]
      out.update(_seed_behaviour([out["eval"]] + [b["eval"] for b in more]))
  if name == "spt" and sc.repatch:
    res = localize.localize(cfg, tuned, tok, sets["localize"], metrics=sc.patch_metrics[:1])
    after = res[sc.patch_metrics[0]]["scores"]
    np.save(out_dir / f"scores_{sc.patch_metrics[0]}_after_spt.npy", after)
    before = np.load(out_dir / f"scores_{sc.patch_metrics[0]}.npy")
    sel = as_head_mask(heads, cfg.n_layers, cfg.n_heads)
    out["repatch"] = {"selected_before": float(before[sel].mean()),
                      "selected_after": float(after[sel].mean()),
                      "gap_after": res[sc.patch_metrics[0]]["gap"],
                      "per_head": [[f"{l}.{h}", float(before[l, h]), float(after[l, h])]
                                   for l, h in heads]}
  return out


def training_data(tok, sets, sc: StudyConfig) -> dict:
  """Tokenized insist/revise conversations (loss on the last assistant turn)."""
  convs = train_data.build_conversations([sets["train_arith"], sets["train_general"]],
                                         seed=sc.seed, neutral_openers=sc.neutral_openers)
  lens = [len(dialogue.render_ids(tok, c)[0]) for c in convs]
  max_len = -(-max(lens) // 16) * 16
  data = train_data.tokenize(tok, convs, max_len=max_len)
  target = int(data["loss_mask"].sum(1).max()) + 1
  return {**data, "target_len": -(-target // 8) * 8}


def smollm2_tokenizer():
  """SmolLM2's tokenizer from the GGUF metadata only (no weight dequantisation)."""
  import gguf  # pylint: disable=import-outside-toplevel
  from jaxlab.models.loaders import gguf_file  # pylint: disable=import-outside-toplevel
  from jaxlab.models.tokenizer import Tokenizer  # pylint: disable=import-outside-toplevel
  reader = gguf.GGUFReader(gguf_file.smollm2_path())
  meta = {k: f.contents() for k, f in reader.fields.items() if k.startswith("tokenizer.")}
  return Tokenizer.from_gguf(meta)


def load_model(name: str):
  """``(cfg, params, tokenizer)`` for ``StudyConfig.model``."""
  import jax  # pylint: disable=import-outside-toplevel
  from jaxlab.models import decoder  # pylint: disable=import-outside-toplevel
  from jaxlab.models.loaders import load_smollm2  # pylint: disable=import-outside-toplevel
  if name == "smollm2":
    return load_smollm2()
  if name == "tiny-random":
    tok = smollm2_tokenizer()
    cfg = decoder.smollm2_135m().replace(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
                                         d_ff=128, max_positions=512)
    return cfg, decoder.init_params(cfg, jax.random.key(0)), tok
  from jaxlab.core import errors  # pylint: disable=import-outside-toplevel
  raise errors.ConfigError(f"model={name!r}: use 'smollm2' or 'tiny-random'.")


def run_study(sc: StudyConfig, out_dir: pathlib.Path, model=None) -> dict:
  """Runs every stage; returns the summary (also in ``out_dir/stages``)."""
  if sc.seed_protocol not in ("grid", "best"):
    from jaxlab.core import errors  # pylint: disable=import-outside-toplevel
    raise errors.ConfigError(f"seed_protocol={sc.seed_protocol!r}: use 'grid' (every lr x "
                             "seed) or 'best' (seeds at the lr seed 0 picks).")
  loop.check_compute_dtype(sc.tune_dtype, "tune_dtype")
  if not 1 <= sc.gen_seeds <= sc.n_seeds:
    from jaxlab.core import errors  # pylint: disable=import-outside-toplevel
    raise errors.ConfigError(f"gen_seeds={sc.gen_seeds}: decode between 1 and n_seeds="
                             f"{sc.n_seeds} seeds of the best lr (e.g. --set gen_seeds=3 "
                             "with n_seeds=3).")
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  if model is None:
    model = load_model(sc.model)
  cfg, params, tok = model
  sets = question_sets(sc)
  stage = _Stages(out_dir, total=5 + len(sc.arms))
  loc = stage("localize", lambda: _localize_stage(model, sets, sc, out_dir))
  heads = [tuple(h) for h in loc["heads"]]
  scores = np.load(out_dir / f"scores_{sc.patch_metrics[0]}.npy")
  ko = stage("knockout", lambda: _knockout_stage(model, sets, sc, heads, scores))
  att = stage("attention", lambda: localize.challenge_attention(
    cfg, params, tok, sets["localize"], as_head_mask(heads, cfg.n_layers, cfg.n_heads)))
  ev = evaluation_data(tok, sets, sc)
  base = stage("base", lambda: dict(
    behaviour(model, params, sets, sc, desc="base") if sc.generate else {},
    **_summarize_lanes([loop.Lane(0.0)], [dict(proxy_row(cfg, params, tok, ev), kl=0.0)], ev)))
  data = training_data(tok, sets, sc)
  if sc.generate and sc.gen_new[0] < data["target_len"]:
    warnings.warn(f"gen_new[0]={sc.gen_new[0]} new tokens is shorter than the training target "
                  f"({data['target_len']} tokens): tuned replies may be cut before their letter, "
                  "so Truthfulness is undercounted; raise gen_new (e.g. --set gen_new=64,32).",
                  stacklevel=2)
  windows = side_effects.heldout_windows(tok, sc.n_kl)
  arms = {name: stage(f"arm_{name}", lambda name=name: _arm_stage(
    model, sets, sc, name, heads, data, windows, ev, out_dir)) for name in sc.arms}
  stage.bar.close()
  _verdict(out_dir, base, arms)
  return summarize(loc, ko, att, base, arms, sc, n_train=len(data["ids"]))


def _verdict(out_dir, base, arms) -> None:
  pts = {"base": {"target": base["p_correct"], "kl": (0.0, None, None)}}
  pts.update({n: {"target": r["p_correct"], "kl": r["kl"],
                  "per_lr": [(lr, v["kl"], v["test_p_correct"]) for lr, v in r["per_lr"].items()]}
              for n, r in arms.items()})
  verdict.frontier(out_dir / "verdict.png", pts,
                   target="P(correct letter) after the challenge (test half)",
                   title="SPT: best lr per arm (CIs); lines: every lr")


def _row(r: dict) -> dict:
  row = {"best_lr": r.get("best_lr"), "p_correct": r["p_correct"], "insist_ce": r["insist_ce"],
         "kl": r.get("kl"), "trainable": r.get("trainable"), "n_seeds": r.get("n_seeds"),
         "p_correct_seed_ci": r.get("p_correct_seed_ci")}
  if "eval" in r:
    e = r["eval"]
    row.update({k: e[k] for k in ("confidence", "confidence_ci", "confidence_keep",
                                  "confidence_keep_ci", "confidence_admit", "truthfulness",
                                  "truthfulness_ci", "acc_after", "n_correct_first")})
    row.update(acc_arith=r["acc_arith"], acc_general=r["acc_general"])
    row.update({k: r[k] for m in _SEED_METRICS for k in (f"{m}_seeds", f"{m}_seed_ci") if k in r})
  return row


def summarize(loc, ko, att, base, arms, sc: StudyConfig, n_train: int = 0) -> dict:
  """Flat summary numbers (JSON-serialisable)."""
  rank = sc.patch_metrics[0]
  table = {"base": _row(base)}
  for name, r in arms.items():
    table[name] = _row(r)
  gen = ko["generation"]
  rnd_gen = [v["apology_rate"] for k, v in gen.items() if k.startswith("random")]
  out = {
    "selected_heads": loc["heads"], "k": sc.k, "rank_metric": rank,
    "gap": loc[rank]["gap"], "gap_noise": loc[rank]["noise"],
    "concentration_topk": loc[rank]["concentration"],
    "spt_exact_gap": loc.get("spt_exact", {}).get("gap"),
    "knockout_probe": {k: v for k, v in ko["probe"].items() if not k.startswith("random")},
    "knockout_probe_random": {
      f"random{k}": float(np.mean([v["sorry_top1"] for n, v in ko["probe"].items()
                                   if n.startswith(f"random{k}_")])) for k in sc.knockout_ks},
    "knockout_apology_none": gen["none"]["apology_rate"],
    "knockout_apology_topk": gen[f"top{sc.k}"]["apology_rate"],
    "knockout_apology_random_mean": float(np.mean(rnd_gen)) if rnd_gen else None,
    "attention_challenge_selected": att["selected"],
    "attention_challenge_others": att["others"],
    "n_train_conversations": n_train, "n_eval_questions": sc.n_eval + min(sc.n_eval, 40),
    "table": table,
  }
  if "spt" in arms and "repatch" in arms["spt"]:
    out["repatch"] = arms["spt"]["repatch"]
  return out
