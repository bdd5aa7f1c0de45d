"""Precise SFT stage: pinpoint tuning of the key heads vs full FT, LoRA and random-k.

Every arm runs through ``jaxlab.tuning.loop``: one vmapped sweep per arm over
(lr, seed) lanes (random-k: one head draw per seed). The target is zero-shot chat
arithmetic with multi-digit operands and the four operators; held-out items are
split into a validation half (picks each arm's lr) and a test half (reported).
"""

import pathlib
import time

import numpy as np

from jaxlab.interp import fast, metrics, patching
from jaxlab.methods.arith_heads import corpus, data
from jaxlab.methods.arith_heads.config import Config
from jaxlab.tuning import evaluate, loop, masks


def tune_data(tok, config: Config) -> tuple[dict, dict]:
  """Training items and disjoint held-out items (target-convention loss masks)."""
  chat = config.tune_target == "chat"
  train = corpus.multidigit_items(config.tune_items, seed=config.seed, ops=config.tune_ops,
                                  max_digits=config.tune_digits)
  test = corpus.multidigit_items(config.test_items, seed=config.seed + 1, ops=config.tune_ops,
                                 max_digits=config.tune_digits, exclude=set(train))
  return corpus.encode_items(tok, train, chat=chat), corpus.encode_items(tok, test, chat=chat)


def arm_specs(cfg, ranked: np.ndarray, mlp_scores: np.ndarray, config: Config):
  """``[(Arm, lanes)]`` for ``config.tune_arms``; lanes = lr grid x seeds."""
  top = tuple(masks.top_heads(ranked, config.tune_k))
  grid = lambda lrs, **kw: [loop.Lane(lr, s, **kw) for lr in lrs for s in range(config.tune_seeds)]
  out = []
  for kind in config.tune_arms:
    if kind == "heads":
      out.append((loop.Arm(name="heads", heads=top), grid(config.lr_heads)))
    elif kind == "heads_kv":
      out.append((loop.Arm(name="heads_kv", heads=top, policy="qkvo"), grid(config.lr_heads)))
    elif kind == "heads_mlp":
      mlps = tuple(int(i) for i in np.argsort(-np.abs(mlp_scores))[: config.tune_mlps])
      out.append((loop.Arm(name=f"heads_mlp{config.tune_mlps}", heads=top, mlp_layers=mlps),
                  grid(config.lr_heads)))
    elif kind == "full":
      out.append((loop.Arm(name="full", kind="full"), grid(config.lr_full)))
    elif kind == "lora":
      out.append((loop.Arm(name="lora_r16", kind="lora"), grid(config.lr_lora)))
    elif kind == "lora_heads":
      out.append((loop.Arm(name="lora_heads", kind="lora", heads=top), grid(config.lr_heads)))
    elif kind == "random":
      lanes = [loop.Lane(lr, s, heads=tuple(masks.random_heads(
        config.seed + 7 + s, cfg.n_layers, cfg.n_heads, config.tune_k, exclude=list(top))))
        for lr in config.lr_heads for s in range(config.tune_seeds)]
      out.append((loop.Arm(name="random", heads=top), lanes))
  return out, top


class Evaluator:
  """Target exact match (val / test halves), 4-shot arithmetic, KL/NLL, factual probes."""

  def __init__(self, cfg, base, tok, config: Config, test: dict):
    self.cfg, self.base = cfg, base
    self.test = test
    self.val_idx = np.arange(0, len(test["ids"]), 2)
    self.test_idx = np.arange(1, len(test["ids"]), 2)
    fs = data.build(tok, op="+", template="equation", shots=config.shots, draws=1,
                    seed=config.seed)
    self.fewshot = (fs.ids_r, fs.mask, fs.target)
    self.text = corpus.general_text(tok, n=config.kl_passages, length=config.kl_length)
    ids, mask, tgt = corpus.probes(tok)
    _, hits = evaluate.accuracy(cfg, base, ids, mask, tgt)
    keep = np.flatnonzero(hits)
    self.probes = (ids[keep], mask[keep], tgt[keep])

  def __call__(self, params) -> dict:
    cfg = self.cfg
    hits, ce = evaluate.target_rows(cfg, params, self.test)
    out = {"val_acc": float(hits[self.val_idx].mean()),
           "target_acc": float(hits[self.test_idx].mean()),
           "target_ce": float(ce[self.test_idx].mean()),
           "target_hits": hits[self.test_idx].astype(int).tolist(),
           "fewshot_acc": evaluate.accuracy(cfg, params, *self.fewshot)[0],
           "probe_acc": (evaluate.accuracy(cfg, params, *self.probes)[0]
                         if len(self.probes[0]) else None),
           "n_probes": int(len(self.probes[0]))}
    out.update(evaluate.kl_and_nll(cfg, self.base, params, *self.text))
    return out


def _best(arm: loop.Arm, lanes, rows: list[dict], best_lr: float | None = None) -> dict:
  """Per-lr means over seeds; the lr with the best validation accuracy (unless ``best_lr`` is
  given), with CIs."""
  by_lr = {}
  for lane, r in zip(lanes, rows):
    by_lr.setdefault(lane.lr, []).append(r)
  summary = {}
  for lr, rs in by_lr.items():
    summary[f"{lr:g}"] = {k: float(np.mean([r[k] for r in rs]))
                          for k in ("val_acc", "target_acc", "kl", "fewshot_acc")}
    summary[f"{lr:g}"]["n_seeds"] = len(rs)
  if best_lr is None:
    best_lr = max(by_lr, key=lambda lr: summary[f"{lr:g}"]["val_acc"])
  rs = by_lr[best_lr]
  hits = np.mean([r["target_hits"] for r in rs], 0)  # per-item accuracy over seeds
  per_seed = [float(r["target_acc"]) for r in rs]
  out = {"best_lr": best_lr, "per_lr": summary, "n_seeds": len(rs),
         "target_acc": evaluate.mean_ci(hits), "kl": evaluate.seed_ci([r["kl"] for r in rs]),
         "target_acc_seeds": per_seed, "target_acc_seed_ci": evaluate.seed_ci(per_seed),
         "fewshot_acc": float(np.mean([r["fewshot_acc"] for r in rs])),
         "probe_acc": (float(np.mean([r["probe_acc"] for r in rs]))
                       if rs[0]["probe_acc"] is not None else None),
         "nll_new": float(np.mean([r["nll_new"] for r in rs]))}
  return out


def tuning_stage(cfg, params, tok, ranked, mlp_scores, pair_set, config: Config,
                 writer=None, cached: dict | None = None, save=None, out_dir=None) -> dict:
  """Runs every arm's sweep (resuming from ``cached`` arm results); per-arm numbers.

  With ``out_dir`` each arm trains ``tune_lane_chunk`` lanes at a time under
  ``out_dir/arms/<arm>/`` with checkpoints every ``tune_ckpt_every`` steps, so a run killed
  inside an arm resumes there (``tuning.loop.sweep_chunked``).
  """
  train, test = tune_data(tok, config)
  ev = Evaluator(cfg, params, tok, config, test)
  results = dict(cached or {})
  if "base" not in results:
    b = ev(params)
    results["base"] = dict(b, trainable=0, target_acc_ci=evaluate.mean_ci(b["target_hits"]))
  specs, top = arm_specs(cfg, ranked, mlp_scores, config)
  tc = loop.TrainConfig(steps=config.tune_steps, batch_size=config.tune_batch,
                        weight_decay=config.weight_decay, target_len=config.tune_target_len,
                        ckpt_every=config.tune_ckpt_every, compute_dtype=config.tune_dtype)
  for arm, lanes in specs:
    if arm.name in results:
      continue
    t0 = time.perf_counter()
    repatch = arm.name == "heads" and config.repatch
    kw = dict(evaluate=ev, lane_chunk=config.tune_lane_chunk, desc=f"tune {arm.name}",
              out_dir=None if out_dir is None else pathlib.Path(out_dir) / "arms" / arm.name,
              keep=lambda i, ln: repatch and ln.seed == 0)   # seed 0 of each lr
    lanes, res, chosen = loop.sweep_lanes(cfg, params, arm, train, lanes, tc, **kw,
                                          protocol=config.tune_seed_protocol,
                                          score=lambda r: r["val_acc"])
    rows = res.rows
    out = dict(_best(arm, lanes, rows, chosen), trainable=res.trainable,
               start_layer=res.start_layer,
               first_loss=float(res.losses[:, 0].mean()),
               final_loss=float(res.losses[:, -1].mean()), seconds=time.perf_counter() - t0)
    if repatch:
      best = next(i for i, ln in enumerate(lanes) if ln.lr == out["best_lr"] and ln.seed == 0)
      out["repatch"] = _repatch(cfg, res.kept[best], pair_set, top, ranked, config)
    results[arm.name] = out
    if writer is not None:
      writer.write(len(results), {"arm": arm.name, "best_lr": out["best_lr"],
                                  "target_acc": out["target_acc"][0], "kl": out["kl"][0]})
    if save is not None:
      save(results)
  results["selected_heads"] = top
  return results


def _repatch(cfg, tuned, aset, top, ranked, config: Config) -> dict:
  """The selected heads' patching effects before and after tuning (same prompts)."""
  pair = patching.Pair.make(aset.ids_r, aset.mask, aset.ids_c, aset.mask)
  res = fast.path_patch_fast(cfg, tuned, pair, metrics.target_logit(aset.target),
                             include_mlps=config.include_mlps, batch_size=config.patch_batch)
  after = res.head_scores("relative")
  idx = tuple(np.asarray(top).T)
  return {"before_mean": float(np.asarray(ranked)[idx].mean()),
          "after_mean": float(after[idx].mean())}
