"""The B.5 conditions as prompt builders, plus accuracy statistics (pure functions).

A condition maps (items, replies) to one LVLM prompt per item:

* ``baseline``: ``"Question: {q}Answer:"``;
* ``qvix``: the item's own LLM reply, raw, then the question (one pass);
* ``irrelevant``: the reply written for another item (item ``i`` gets item ``i+1``'s);
* ``filler``: content-free text of the same character length as the item's reply;
* ``answered_first``: a two-pass contrast; the LVLM first answers each parsed
  pre-question with the image, then sees "Pre-question k: ... / Answer: ..." lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from jaxlab.methods.qvix.prompts import QUESTION_TEMPLATE, build_lvlm_prompt, parse_prequestions

FILLER_WORD = "okay "


def filler(n_chars: int) -> str:
  """Content-free text of exactly ``n_chars`` characters ("okay okay ...")."""
  reps = n_chars // len(FILLER_WORD) + 1
  return (FILLER_WORD * reps)[:n_chars]


def condition_prompts(name: str, items: Sequence[dict], replies: Sequence[str], *,
                      reply_mode: str = "raw", instruction: str | None = None,
                      parse_mode: str = "strict") -> list[str]:
  """LVLM prompts of the single-pass conditions (baseline, qvix, irrelevant, filler)."""
  qs = [it["question"] for it in items]
  build = lambda r, q: build_lvlm_prompt(r, q, QUESTION_TEMPLATE, reply_mode, instruction,
                                         parse_mode)
  if name == "baseline":
    return [build(None, q) for q in qs]
  if name == "qvix":
    return [build(r, q) for r, q in zip(replies, qs)]
  if name == "irrelevant":
    n = len(qs)
    return [build(replies[(i + 1) % n], q) for i, q in enumerate(qs)]
  if name == "filler":
    return [build(filler(len(r)), q) for r, q in zip(replies, qs)]
  raise ValueError(f"condition {name!r}; use baseline, qvix, irrelevant or filler "
                   "(answered_first is two-pass: answered_first_prompts).")


def answered_first_prompts(items: Sequence[dict], replies: Sequence[str],
                           answer_fn: Callable[[list[int], list[str]], list[str]], *,
                           instruction: str | None = None,
                           parse_mode: str = "strict") -> list[str]:
  """Two passes: answer every parsed pre-question with the image, then ask the question.

  ``answer_fn(image_indices, prompts) -> answers`` runs the LVLM (image i of ``items``);
  ``parse_mode`` is ``parse_prequestions``'s.
  """
  preqs = [parse_prequestions(r, parse_mode) for r in replies]
  idx = [i for i, ps in enumerate(preqs) for _ in ps]
  flat = [QUESTION_TEMPLATE.format(p + "\n") for ps in preqs for p in ps]
  answers = answer_fn(idx, flat) if flat else []
  out, k = [], 0
  for it, ps in zip(items, preqs):
    lines = []
    for j, p in enumerate(ps):
      lines.append(f"Pre-question {j + 1}: {p}\nAnswer: {answers[k].strip()}")
      k += 1
    ctx = "\n".join(lines) if lines else None
    out.append(build_lvlm_prompt(ctx, it["question"], instruction=instruction))
  return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
  """Wilson score 95% interval for k successes in n trials."""
  if n == 0:
    return (float("nan"), float("nan"))
  p = k / n
  den = 1 + z * z / n
  mid = (p + z * z / (2 * n)) / den
  half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
  return (float(mid - half), float(mid + half))


def paired_diff_ci(a: np.ndarray, b: np.ndarray, n_boot: int = 2000,
                   seed: int = 0) -> tuple[float, float, float]:
  """Mean of ``a - b`` (0/1 per item) and its 95% paired-bootstrap interval."""
  d = np.asarray(a, float) - np.asarray(b, float)
  rng = np.random.default_rng(seed)
  boots = d[rng.integers(0, len(d), (n_boot, len(d)))].mean(1)
  return float(d.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def breakdown(correct: Sequence[bool], groups: Sequence[str]) -> dict[str, float]:
  """Accuracy per group label (e.g. subject, grade band, question type)."""
  c, g = np.asarray(correct, float), np.asarray(groups)
  return {str(k): float(c[g == k].mean()) for k in sorted(set(g.tolist()))}


def grade_band(grade: str) -> str:
  """The release's grade split: "grade1".."grade6" -> "1-6", "grade7".."grade12" -> "7-12"."""
  n = int(str(grade).replace("grade", "") or 0)
  return "1-6" if n <= 6 else "7-12"
