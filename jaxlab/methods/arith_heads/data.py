"""Arithmetic prompts with single-token answers and null-operator counterfactuals.

Spec h.H1: operands/operators in three templates (equation, statement, question),
4-shot in the query's own template with seeded shot draws that exclude the query
pair, counterfactuals that replace only the query's operator with a null token
(``" @"`` for symbols, ``" nothing"`` for words) at an equal token count.
Built against any tokenizer with ``encode(text) -> list[int]``.
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np

from jaxlab.core.errors import DataError

TEMPLATES = {
  "equation": "{a} {sym} {b} = ",
  "statement": "{a} {word} {b} is equal to ",
  "qa": "Q: What is {a} {word} {b}?\nA: ",
}
OPERATORS = {
  "+": ("plus", lambda a, b: a + b),
  "-": ("minus", lambda a, b: a - b),
  "*": ("times", lambda a, b: a * b),
  "/": ("divided by", lambda a, b: a // b),
}
NULL_SYM, NULL_WORD = "@", "nothing"


class TextTokenizer(Protocol):
  def encode(self, text: str) -> list[int]: ...


def operand_pairs(op: str) -> list[tuple[int, int]]:
  """Spec h.H1 operand sets with single-digit answers."""
  if op == "+":
    return [(a, b) for a in range(1, 9) for b in range(1, 9) if a + b <= 9]
  if op == "-":
    return [(a, b) for a in range(1, 10) for b in range(0, a)]
  if op == "*":
    return [(a, b) for a in range(1, 10) for b in range(1, 10) if a * b <= 9]
  if op == "/":
    return [(a, b) for a in range(1, 10) for b in range(1, 10) if a % b == 0]
  raise DataError(f"operator {op!r}; use one of {tuple(OPERATORS)}.")


def render(template: str, op: str, a: int, b: int, null: bool = False) -> str:
  word, _ = OPERATORS[op]
  return TEMPLATES[template].format(a=a, b=b, sym=NULL_SYM if null else op,
                                    word=NULL_WORD if null else word)


@dataclasses.dataclass(frozen=True)
class ArithSet:
  """A left-padded batch of arithmetic prompts.

  Attributes:
    ids_r, ids_c: int32 [n, t] prompt and null-operator counterfactual.
    mask: int32 [n, t] (shared: equal token counts are asserted).
    target: int32 [n] the answer digit's token id.
    answer: int32 [n] the answer value C.
    operands: bool [n, t] query operand positions; operator: bool [n, t].
    digit_ids: int32 [10] token ids of "0".."9".
    meta: per-prompt dicts (template, op, a, b, shot seed).
  """

  ids_r: np.ndarray
  ids_c: np.ndarray
  mask: np.ndarray
  target: np.ndarray
  answer: np.ndarray
  operands: np.ndarray
  operator: np.ndarray
  digit_ids: np.ndarray
  meta: tuple

  def __len__(self) -> int:
    return int(self.ids_r.shape[0])

  def take(self, idx: Sequence[int] | np.ndarray) -> "ArithSet":
    idx = np.asarray(idx, np.int64)
    arrays = {f.name: getattr(self, f.name)[idx] for f in dataclasses.fields(self)
              if f.name not in ("digit_ids", "meta")}
    out = dataclasses.replace(self, **arrays, meta=tuple(self.meta[i] for i in idx))
    return out.trim()

  def trim(self) -> "ArithSet":
    """Drops leading all-padding columns."""
    keep = int(self.mask.sum(1).max()) if len(self) else 0
    cut = self.mask.shape[1] - keep
    if cut <= 0:
      return self
    cols = {n: getattr(self, n)[:, cut:] for n in ("ids_r", "ids_c", "mask", "operands",
                                                   "operator")}
    return dataclasses.replace(self, **cols)


def digit_ids(tok: TextTokenizer) -> np.ndarray:
  ids = []
  for d in range(10):
    enc = tok.encode(str(d))
    if len(enc) != 1:
      raise DataError(f"digit {d} is {len(enc)} tokens for this tokenizer; the study needs "
                      "single-token digits (Llama/SmolLM2-style digit splitting).")
    ids.append(enc[0])
  return np.asarray(ids, np.int32)


def _shots(template, op, pairs, query, k, rng) -> str:
  pool = [p for p in pairs if p != query]
  pick = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
  _, fn = OPERATORS[op]
  return "".join(render(template, op, *pool[i]) + f"{fn(*pool[i])}\n" for i in pick)


def build(
  tok: TextTokenizer, *, op: str = "+", template: str = "equation", shots: int = 4,
  draws: int = 5, seed: int = 0, pairs: Sequence[tuple[int, int]] | None = None,
  prefix: Callable[[str], str] | None = None,
) -> ArithSet:
  """All prompts for one operator and template.

  Args:
    tok: tokenizer (``encode``); digits must be single tokens.
    op: "+", "-", "*" or "/".
    template: "equation", "statement" or "qa".
    shots: in-context examples per prompt (own template; 0 = zero-shot).
    draws: seeded shot draws per operand pair (each excludes the query pair).
    seed: base seed.
    pairs: operand pairs (default ``operand_pairs(op)``).
    prefix: optional wrapper of the final text (e.g. a chat template); it must not
      depend on the operator token.

  Returns:
    An ArithSet with ``len(pairs) * draws`` prompts (``draws`` = 1 when ``shots == 0``).
  """
  pairs = list(pairs or operand_pairs(op))
  all_pairs = operand_pairs(op)
  digits = digit_ids(tok)
  _, fn = OPERATORS[op]
  rows, meta = [], []
  n_draws = draws if shots else 1
  for i, (a, b) in enumerate(pairs):
    for s in range(n_draws):
      rng = np.random.default_rng([seed, i, s])
      ctx = _shots(template, op, all_pairs, (a, b), shots, rng) if shots else ""
      text_r = ctx + render(template, op, a, b)
      text_c = ctx + render(template, op, a, b, null=True)
      if prefix is not None:
        text_r, text_c = prefix(text_r), prefix(text_c)
      rows.append(_encode_pair(tok, text_r, text_c, a, b, digits))
      meta.append({"template": template, "op": op, "a": a, "b": b, "draw": s,
                   "answer": int(fn(a, b))})
  answers = np.asarray([m["answer"] for m in meta], np.int32)
  if answers.min() < 0 or answers.max() > 9:
    raise DataError("answers must be single digits 0..9; restrict the operand pairs.")
  return _pad(rows, meta, digits, answers)


def _encode_pair(tok, text_r, text_c, a, b, digits):
  ids_r, ids_c = tok.encode(text_r), tok.encode(text_c)
  if len(ids_r) != len(ids_c):
    raise DataError(f"counterfactual changes the token count ({len(ids_r)} vs {len(ids_c)}) "
                    f"for {text_r!r}; choose a single-token null operator.")
  diff = [i for i, (x, y) in enumerate(zip(ids_r, ids_c)) if x != y]
  if len(diff) != 1:
    raise DataError(f"counterfactual differs at {len(diff)} positions for {text_r!r}; "
                    "expected exactly the query operator.")
  op_pos = diff[0]
  operands = np.zeros(len(ids_r), bool)
  # Query operands: the digit tokens of a (before the operator) and b (after it).
  before = [i for i in range(op_pos) if ids_r[i] == digits[a]]
  after = [i for i in range(op_pos + 1, len(ids_r)) if ids_r[i] == digits[b]]
  if before:
    operands[before[-1]] = True
  if after:
    operands[after[0]] = True
  operator = np.zeros(len(ids_r), bool)
  operator[op_pos] = True
  return ids_r, ids_c, operands, operator


def _pad(rows, meta, digits, answers) -> ArithSet:
  t = max(len(r[0]) for r in rows)
  n = len(rows)
  ids_r = np.zeros((n, t), np.int32)
  ids_c = np.zeros((n, t), np.int32)
  mask = np.zeros((n, t), np.int32)
  operands = np.zeros((n, t), bool)
  operator = np.zeros((n, t), bool)
  for i, (r, c, o1, o2) in enumerate(rows):
    k = len(r)
    ids_r[i, t - k:], ids_c[i, t - k:], mask[i, t - k:] = r, c, 1
    operands[i, t - k:], operator[i, t - k:] = o1, o2
  return ArithSet(ids_r, ids_c, mask, digits[answers], answers, operands, operator, digits,
                  tuple(meta))


def concat(sets: Sequence[ArithSet]) -> ArithSet:
  """Joins sets (re-padding to the longest)."""
  t = max(s.mask.shape[1] for s in sets)

  def pad(x):
    return np.pad(x, ((0, 0), (t - x.shape[1], 0)))

  cols = {n: np.concatenate([pad(getattr(s, n)) for s in sets]) for n in
          ("ids_r", "ids_c", "mask", "operands", "operator")}
  return ArithSet(**cols, target=np.concatenate([s.target for s in sets]),
                  answer=np.concatenate([s.answer for s in sets]), digit_ids=sets[0].digit_ids,
                  meta=tuple(m for s in sets for m in s.meta))
