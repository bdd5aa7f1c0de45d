"""Precise SFT stage: pinpoint tuning of the key heads vs full FT, LoRA and random-k."""

import time

import jax
import numpy as np

from jaxlab.core.progress import progress
from jaxlab.interp import fast, metrics, patching
from jaxlab.methods.arith_heads import corpus, data
from jaxlab.methods.arith_heads.config import Config
from jaxlab.tuning import evaluate, lora, masks, sft


def split_pairs(config: Config, test_share: float = 0.3) -> tuple[dict, dict]:
  """Operand pairs per operator split into train / held-out test (seeded)."""
  train, test = {}, {}
  for op in config.ops:
    pairs = data.operand_pairs(op)
    order = np.random.default_rng(config.seed).permutation(len(pairs))
    n_test = max(1, int(round(test_share * len(pairs))))
    test[op] = [pairs[i] for i in order[:n_test]]
    train[op] = [pairs[i] for i in order[n_test:]]
  return train, test


def tune_data(tok, config: Config) -> tuple[dict, dict]:
  """Training arrays and held-out evaluation prompts for the SFT target."""
  train, test = split_pairs(config)
  chat = config.tune_target == "chat"
  out = {}
  for name, pairs in (("train", train), ("test", test)):
    ids, mask, loss_mask, answers = corpus.sft_examples(tok, ops=config.ops, pairs=pairs, chat=chat)
    out[name] = {"ids": ids, "mask": mask, "loss_mask": loss_mask, "answers": answers}
  return out["train"], out["test"]


def make_arms(cfg, params, ranked: np.ndarray, mlp_scores: np.ndarray, config: Config):
  """The arms listed in ``config.tune_arms`` (random expands to one arm per seed)."""
  L, H, kv = cfg.n_layers, cfg.n_heads, cfg.kv_heads
  top = masks.top_heads(ranked, config.tune_k)
  arms = []
  for kind in config.tune_arms:
    if kind == "heads":
      arms.append(sft.Arm(name="heads", masks=masks.head_masks(params, top, n_heads=H,
                                                                n_kv_heads=kv)))
    elif kind == "heads_kv":
      arms.append(sft.Arm(name="heads_kv", masks=masks.head_masks(
        params, top, n_heads=H, n_kv_heads=kv, tuning=masks.HeadTuning(policy="qkvo"))))
    elif kind == "heads_mlp":
      mlps = tuple(int(i) for i in np.argsort(-np.abs(mlp_scores))[: config.tune_mlps])
      arms.append(sft.Arm(name=f"heads_mlp{config.tune_mlps}", masks=masks.head_masks(
        params, top, n_heads=H, n_kv_heads=kv, tuning=masks.HeadTuning(mlp_layers=mlps))))
    elif kind == "full":
      arms.append(sft.Arm(name="full", kind="full"))
    elif kind == "lora":
      arms.append(sft.Arm(name="lora_r16", kind="lora"))
    elif kind == "lora_heads":
      shapes = lora.lora_init(jax.random.key(0), params, rank=16)
      arms.append(sft.Arm(name="lora_heads", kind="lora", masks=lora.lora_head_masks(
        shapes, top, n_layers=L, n_heads=H, n_kv_heads=kv)))
    elif kind == "random":
      for s in range(config.random_tune_seeds):
        rnd = masks.random_heads(config.seed + 7 + s, L, H, config.tune_k, exclude=top)
        arms.append(sft.Arm(name=f"random_s{s}", masks=masks.head_masks(
          params, rnd, n_heads=H, n_kv_heads=kv)))
  return arms, top


def _lr(arm: sft.Arm, config: Config) -> float:
  if arm.kind == "full":
    return config.lr_full
  return config.lr_lora if arm.kind == "lora" else config.lr_heads


class Evaluator:
  """Target accuracy, few-shot arithmetic, KL/NLL on held-out text, factual probes."""

  def __init__(self, cfg, base, tok, config: Config, test: dict, train: dict):
    self.cfg, self.base, self.config = cfg, base, config
    self.test = (test["ids"][:, :-1], test["mask"][:, :-1], test["answers"])
    self.train = (train["ids"][:, :-1], train["mask"][:, :-1], train["answers"])
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
    out = {
      "target_acc": evaluate.accuracy(cfg, params, *self.test)[0],
      "target_train_acc": evaluate.accuracy(cfg, params, *self.train)[0],
      "fewshot_acc": evaluate.accuracy(cfg, params, *self.fewshot)[0],
      "probe_acc": evaluate.accuracy(cfg, params, *self.probes)[0] if len(self.probes[0]) else None,
      "n_probes": int(len(self.probes[0])),
    }
    out.update(evaluate.kl_and_nll(cfg, self.base, params, *self.text))
    return out


def tuning_stage(cfg, params, tok, ranked, mlp_scores, pair_set, config: Config,
                 writer=None, cached: dict | None = None, save=None) -> dict:
  """Runs every arm (resuming from ``cached`` arm results); returns per-arm numbers."""
  train, test = tune_data(tok, config)
  ev = Evaluator(cfg, params, tok, config, test, train)
  results = dict(cached or {})
  if "base" not in results:
    results["base"] = dict(ev(params), trainable=0)
  arms, top = make_arms(cfg, params, ranked, mlp_scores, config)
  for arm in arms:
    if arm.name in results:
      continue
    t0 = time.perf_counter()
    bar = progress(total=config.tune_steps, desc=f"tune {arm.name}")
    tuned, hist = sft.finetune(cfg, params, train, arm, steps=config.tune_steps,
                               batch_size=config.tune_batch, lr=_lr(arm, config),
                               weight_decay=config.weight_decay, seed=config.seed,
                               callback=lambda i, loss: bar.update(1))
    bar.close()
    res = dict(ev(tuned), trainable=sft.trainable_count(params, arm), final_loss=hist[-1],
               first_loss=hist[0], seconds=time.perf_counter() - t0)
    if arm.name == "heads" and config.repatch:
      res["repatch"] = _repatch(cfg, tuned, pair_set, top, ranked, config)
    results[arm.name] = res
    if writer is not None:
      writer.write(len(results), {"arm": arm.name, **{k: v for k, v in res.items()
                                                      if isinstance(v, (int, float))}})
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
          "after_mean": float(after[idx].mean()), "after_scores": after}
