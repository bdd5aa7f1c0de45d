"""The arithmetic-heads study, stage by stage (spec h.H1).

Each stage takes the model and a config and returns JSON-friendly numbers; the
experiment modules chain them and cache each stage's result so a rerun resumes.
"""

import dataclasses
import time

import jax.numpy as jnp
import numpy as np

from jaxlab.interp import attention, attribution, fast, knockout, metrics, patching
from jaxlab.methods.arith_heads import data
from jaxlab.methods.arith_heads.config import Config
from jaxlab.tuning import evaluate


def load(config: Config):
  """(cfg, params, tokenizer): SmolLM2 (or any ``load_model`` name), or the smoke model."""
  if config.model == "tiny-random":
    from jaxlab.methods.arith_heads import smoke  # noqa: PLC0415

    cfg, params = smoke.tiny_decoder()
    return cfg, params, smoke.WordTokenizer(cfg.vocab_size)
  from jaxlab.models.loaders import load_model  # noqa: PLC0415

  return load_model(config.model)


def arith_set(tok, config: Config, template: str, op: str, *, shots: int | None = None,
              draws: int | None = None) -> data.ArithSet:
  return data.build(tok, op=op, template=template, shots=config.shots if shots is None else shots,
                    draws=config.draws if draws is None else draws, seed=config.seed)


def correct_subset(cfg, params, aset: data.ArithSet, limit: int | None = None,
                   min_keep: int = 2):
  """(the prompts the model answers correctly, accuracy on all prompts).

  With fewer than ``min_keep`` correct prompts (e.g. the random smoke model) it
  falls back to the first prompts unfiltered, so every stage still runs.
  """
  acc, hits = evaluate.accuracy(cfg, params, aset.ids_r, aset.mask, aset.target)
  keep = np.flatnonzero(hits)
  if keep.size < min_keep:
    keep = np.arange(len(aset))
  return aset.take(keep[:limit] if limit else keep), acc


def base_accuracy(cfg, params, tok, config: Config) -> dict:
  """4-shot accuracy per template (and zero-shot equation) for each operator."""
  out = {}
  for op in config.ops:
    for tpl in config.templates:
      out[f"{tpl}{op}"] = correct_subset(cfg, params, arith_set(tok, config, tpl, op))[1]
    out[f"zeroshot_equation{op}"] = correct_subset(
      cfg, params, arith_set(tok, config, "equation", op, shots=0))[1]
  return out


def patch_stage(cfg, params, aset: data.ArithSet, config: Config, out_dir) -> dict:
  """The [L x H] (and MLP) path-patching map on correct prompts, key heads, AtP, attention."""
  pair = patching.Pair.make(aset.ids_r, aset.mask, aset.ids_c, aset.mask)
  metric = metrics.target_logit(aset.target)
  t0 = time.perf_counter()
  res = fast.path_patch_fast(cfg, params, pair, metric, include_mlps=config.include_mlps,
                             mlps=True, batch_size=config.patch_batch)
  seconds = time.perf_counter() - t0
  rel, diff = res.head_scores("relative"), res.head_scores("diff")
  n_heads = rel.size
  order = np.argsort(rel.ravel(), kind="stable")
  top = [divmod(int(i), cfg.n_heads) for i in order[: max(config.knock_ks + (config.tune_k,))]]
  attention.head_heatmap(out_dir / "patching_heads.png", rel,
                         title=f"path patching, {len(aset)} prompts",
                         label="% change of logit(C)")
  atp = attribution.attribution_patch(cfg, params, pair, metric, include_mlps=config.include_mlps)
  agree = attribution.agreement(atp.head_scores("relative"), rel)
  spans = {"operands": aset.operands, "operator": aset.operator}
  mass = attention.attention_mass(cfg, params, aset.ids_r, aset.mask, spans)
  top8 = np.zeros(rel.shape, bool)
  for l, h in top[:8]:
    top8[l, h] = True
  return {
    "n_prompts": len(aset), "seconds": seconds,
    "head_scores": rel, "head_logit_change": diff, "mlp_scores": res.mlp_scores("relative"),
    "m_ref_mean": float(np.mean(res.m_ref)), "m_cf_mean": float(np.mean(res.m_cf)),
    "cf_relative_change": float(np.mean((res.m_cf - res.m_ref) / res.m_ref) * 100),
    "top_heads": top, "min_score": float(rel.min()),
    "n_below_5pct": int((rel < -5.0).sum()), "share_below_5pct": float((rel < -5.0).mean()),
    "n_heads_80pct": metrics.n_for_share(rel, 0.8),
    "share_heads_80pct": metrics.n_for_share(rel, 0.8) / n_heads,
    "concentration_top8": metrics.concentration(rel, 8),
    "concentration_top11": metrics.concentration(rel, 11),
    "atp_agreement": agree,
    "attn_operands_top8": float(mass["operands"][top8].mean()),
    "attn_operands_other": float(mass["operands"][~top8].mean()),
    "attn_operator_top8": float(mass["operator"][top8].mean()),
    "attn_operator_other": float(mass["operator"][~top8].mean()),
  }


def knockout_stage(cfg, params, aset: data.ArithSet, ranked: np.ndarray, config: Config,
                   ks: tuple[int, ...] | None = None, z_mean=None) -> dict:
  """Mean-ablate the top-k heads vs random-k (seeds) on ``aset``; accuracy and logit diff."""
  ks = tuple(ks or config.knock_ks)
  L, H = cfg.n_layers, cfg.n_heads
  masks = [np.zeros((L, H), np.float32)] + [knockout.top_k_mask(ranked, k) for k in ks]
  for k in ks:
    masks += list(knockout.random_k_masks(config.random_seeds, k, L, H,
                                          seed=config.seed + 1000 * k))
  ids, mask = jnp.asarray(aset.ids_r), jnp.asarray(aset.mask)
  if z_mean is None:
    z_mean = knockout.mean_z(cfg, params, ids, mask)
  metric = metrics.logit_diff(aset.target, aset.digit_ids)
  res = knockout.knockout_sweep(cfg, params, ids, mask, aset.target, metric, np.stack(masks),
                                kind=config.knock_kind, z_mean=z_mean, chunk=config.knock_chunk)
  acc = res["correct"].mean(-1)
  ld = res["metric"].mean(-1)
  out = {"n_prompts": len(aset), "base_acc": float(acc[0]), "base_logit_diff": float(ld[0])}
  for i, k in enumerate(ks):
    r0 = 1 + len(ks) + i * config.random_seeds
    racc = acc[r0: r0 + config.random_seeds]
    mean, lo, hi = knockout.mean_ci(racc)
    out[f"top{k}"] = {"acc": float(acc[1 + i]), "logit_diff": float(ld[1 + i]),
                      "random_acc_mean": float(mean),
                      "random_acc_ci": [float(max(lo, 0.0)), float(min(hi, 1.0))],
                      "random_logit_diff": float(ld[r0: r0 + config.random_seeds].mean())}
  return out


def transfer_stage(cfg, params, tok, ranked, config: Config) -> dict:
  """Knockout of the equation-ranked heads on other templates and operators."""
  out = {}
  for tpl, op in config.transfer_sets:
    try:
      aset = arith_set(tok, config, tpl, op, draws=1)
    except Exception as err:  # noqa: BLE001 (a tokenizer may not support a template)
      out[f"{tpl}{op}"] = {"error": str(err)}
      continue
    sub, acc = correct_subset(cfg, params, aset, config.n_knock)
    res = knockout_stage(cfg, params, sub, ranked, config, ks=(config.transfer_k,))
    out[f"{tpl}{op}"] = dict(res, base_acc_all=acc)
  return out


def dataclass_dict(config: Config) -> dict:
  return dataclasses.asdict(config)
