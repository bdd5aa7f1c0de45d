"""Runs QVix conditions over items with an LVLM and scores them.

``lvlm_answerer`` wraps ``jaxlab.models.lvlm`` (any LLaVA checkpoint or the stand-in) as
``answer_fn(images, prompts) -> answers``; ``run_conditions`` builds each condition's
prompts (``controls``), answers them in batches, and scores every answer under the three
scoring variants (``scoring``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from jaxlab.core.progress import progress
from jaxlab.methods.qvix import controls, scoring
from jaxlab.models import lvlm
from jaxlab.models.tokenizer import pad_left

SCORINGS = ("whole", "letter", "closest")
IMAGE = "<image>"


def prompt_ids(tok, cfg: lvlm.LVLMConfig, text: str) -> list[int]:
  """Token ids of ``text`` with each ``<image>`` expanded to N image tokens.

  When the tokenizer knows ``<image>`` as the image token (HF LLaVA tokenizers), the whole
  string is encoded at once, as HF's processor does; otherwise the pieces around it are
  encoded separately (special tokens such as BOS only on the first piece).
  """
  if tok.encode(IMAGE, special=False) == [cfg.image_token_id]:
    ids = tok.encode(text)
  else:
    parts = text.split(IMAGE)
    ids = tok.encode(parts[0])
    for p in parts[1:]:
      ids += [cfg.image_token_id] + (tok.encode(p, special=False) if p else [])
  return lvlm.expand_image_tokens(ids, cfg.image_token_id, cfg.num_image_tokens)


def lvlm_answerer(cfg: lvlm.LVLMConfig, params: dict, tok, proc: lvlm.ImageProcessing, *,
                  wrap: Callable[[str], str] = lambda p: IMAGE + "\n" + p,
                  max_new_tokens: int = 16, batch_size: int = 8, bucket: int = 32) -> Callable:
  """``answer_fn(images, prompts) -> answers``: greedy, batched, KV-cached.

  Args:
    wrap: turns a QVix prompt into the model's input text (holding one ``<image>``), e.g.
      a LLaVA-1.5 chat line ``"USER: <image>\\n{p} ASSISTANT:"``.
    bucket: prompt lengths are padded up to a multiple of this (fewer compiles).
  """
  def answer(images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[str]:
    out = []
    for s in range(0, len(prompts), batch_size):
      ids, mask = pad_left([prompt_ids(tok, cfg, wrap(p)) for p in prompts[s:s + batch_size]],
                           tok.pad_id)
      pix = lvlm.preprocess(list(images[s:s + batch_size]), proc)
      # buckets: length to a multiple of `bucket`, the last batch grown to `batch_size` rows
      g = lvlm.generate(cfg, params, ids, mask, pix, max_new_tokens=max_new_tokens,
                        stop_ids=tok.eos_ids or cfg.text.eos_ids, pad_to=bucket,
                        batch_to=batch_size)
      out += [tok.decode(r[:k]).strip() for r, k in zip(np.asarray(g.tokens),
                                                          np.asarray(g.lengths))]
    return out

  return answer


def score_all(answers: Sequence[str], items: Sequence[dict]) -> dict[str, np.ndarray]:
  """Correctness [n] bool per scoring variant; items need "answer" (text) and "choices"."""
  return {m: np.array([scoring.score(a, it["answer"], list(it["choices"]), m)
                       for a, it in zip(answers, items)]) for m in SCORINGS}


def run_conditions(items: Sequence[dict], replies: Sequence[str], answer_fn: Callable,
                   conditions: Sequence[str], *, reply_mode: str = "raw",
                   instruction: str | None = None, parse_mode: str = "strict",
                   desc: str = "qvix") -> dict[str, dict]:
  """Answers and scores of each condition.

  Args:
    items: dicts with "image" (uint8), "question" (the full string), "answer", "choices".
    replies: one LLM reply per item (for the qvix / irrelevant / filler / answered_first
      conditions).
    answer_fn: ``(images, prompts) -> answers``.
    conditions: names from baseline, qvix, irrelevant, filler, answered_first.
    reply_mode, instruction, parse_mode: see ``prompts.build_lvlm_prompt``.

  Returns:
    {condition: {"prompts", "answers", "correct": {scoring: bool [n]}}}.
  """
  images = [it["image"] for it in items]
  out = {}
  for name in progress(list(conditions), desc=desc):
    if name == "answered_first":
      fn = lambda idx, ps: answer_fn([images[i] for i in idx], ps)
      prompts = controls.answered_first_prompts(items, replies, fn, instruction=instruction,
                                                parse_mode=parse_mode)
    else:
      prompts = controls.condition_prompts(name, items, replies, reply_mode=reply_mode,
                                           instruction=instruction, parse_mode=parse_mode)
    answers = answer_fn(images, prompts)
    out[name] = {"prompts": prompts, "answers": answers, "correct": score_all(answers, items)}
  return out


def summarize(results: dict[str, dict], items: Sequence[dict],
              group_key: str = "skill") -> dict[str, dict]:
  """Accuracy, Wilson 95% CI, paired difference vs baseline and a per-group breakdown."""
  summary = {}
  base = results.get("baseline")
  for name, r in results.items():
    c = r["correct"]["whole"]
    row = {"n": int(len(c)), "acc": float(c.mean()),
           "ci95": controls.wilson(int(c.sum()), len(c)),
           **{f"acc_{m}": float(r["correct"][m].mean()) for m in SCORINGS if m != "whole"},
           "by_" + group_key: controls.breakdown(c, [str(it.get(group_key, "")) for it in items])}
    if base is not None and name != "baseline":
      row["diff_vs_baseline"] = controls.paired_diff_ci(c, base["correct"]["whole"])
    summary[name] = row
  return summary
