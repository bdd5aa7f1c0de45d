"""Side-effect data: held-out general text, factual probes, and the SFT corpus.

- General text: passages of ``pydoc_data`` (ships with CPython, so always there;
  spec assets 4.8), first ``length`` tokens each, for KL(orig || tuned) and NLL.
- Probes: jaxlab-authored single-token factual completions; the experiment keeps
  those the base model gets right (a non-math task whose accuracy starts at 100%).
- SFT corpus (jaxlab's choice; paper 1's corpus is unidentified): zero-shot chat
  arithmetic "What is A + B? Answer with just the number." -> "C", on which the
  base model scores near 0%.
"""

from collections.abc import Sequence

import numpy as np

from jaxlab.methods.arith_heads.data import OPERATORS, TextTokenizer, operand_pairs

PROBES = [
  ("The capital of France is", " Paris"), ("The capital of Italy is", " Rome"),
  ("The capital of Japan is", " Tokyo"), ("The capital of Germany is", " Berlin"),
  ("The capital of Spain is", " Madrid"), ("The capital of England is", " London"),
  ("Monday, Tuesday, Wednesday,", " Thursday"), ("January, February, March,", " April"),
  ("The opposite of hot is", " cold"), ("The opposite of up is", " down"),
  ("The sun rises in the", " east"), ("Water freezes at zero degrees", " Celsius"),
  ("The color of the sky on a clear day is", " blue"), ("Cats and", " dogs"),
  ("The first letter of the alphabet is", " A"), ("Bread and", " butter"),
  ("The Eiffel Tower is in", " Paris"), ("Romeo and", " Juliet"),
  ("The largest planet in the solar system is", " Jupiter"),
  ("The chemical symbol for water is", " H"), ("Peanut butter and", " jelly"),
  ("Salt and", " pepper"), ("Ladies and", " gentlemen"), ("Once upon a", " time"),
  ("The United States of", " America"), ("Thank you very", " much"),
  ("The Statue of Liberty is in New", " York"), ("An apple a day keeps the", " doctor"),
  ("The programming language named after a snake is", " Python"),
  ("The day after Friday is", " Saturday"), ("Black and", " white"),
  ("Rock, paper,", " scissors"),
]


def general_text(tok: TextTokenizer, *, n: int = 64, length: int = 128, min_len: int = 32,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Left-padded held-out passages from ``pydoc_data``: ids, mask ``[n, length]``."""
  from pydoc_data import topics  # noqa: PLC0415

  keys = sorted(topics.topics)
  order = np.random.default_rng(seed).permutation(len(keys))
  rows = []
  for i in order:
    ids = tok.encode(topics.topics[keys[i]].strip())[:length]
    if len(ids) >= min_len:
      rows.append(ids)
    if len(rows) == n:
      break
  ids = np.zeros((len(rows), length), np.int32)
  mask = np.zeros((len(rows), length), np.int32)
  for i, r in enumerate(rows):
    ids[i, length - len(r):], mask[i, length - len(r):] = r, 1
  return ids, mask


def probes(tok: TextTokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Probe prompts (left-padded) and the first token of each answer: ids, mask, target."""
  enc = [tok.encode(p) for p, _ in PROBES]
  targets = np.asarray([tok.encode(a)[0] for _, a in PROBES], np.int32)
  t = max(map(len, enc))
  ids = np.zeros((len(enc), t), np.int32)
  mask = np.zeros((len(enc), t), np.int32)
  for i, r in enumerate(enc):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
  return ids, mask, targets


def chat_question(op: str, a: int, b: int) -> str:
  return f"What is {a} {op} {b}? Answer with just the number."


def sft_examples(
  tok, *, ops: Sequence[str] = ("+", "-"), pairs: dict | None = None, chat: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Supervised examples "question -> answer digit".

  Args:
    tok: tokenizer with ``encode`` (and ``chat(messages)`` when ``chat``).
    ops: operators to include.
    pairs: ``{op: [(a, b), ...]}`` (default: all single-digit pairs).
    chat: wrap in the model's chat template (else a bare "A + B = " prompt).

  Returns:
    ids [n, t] (prompt + answer token), mask [n, t], loss_mask [n, t] (1 on the answer
    token position's *input*, i.e. the prompt's last token predicts it), answer ids [n].
  """
  rows, answers = [], []
  for op in ops:
    _, fn = OPERATORS[op]
    for a, b in (pairs or {}).get(op, operand_pairs(op)):
      q = chat_question(op, a, b)
      text = tok.chat([{"role": "user", "content": q}]) if chat else f"{a} {op} {b} = "
      ans = tok.encode(str(fn(a, b)))
      rows.append(tok.encode(text) + ans)
      answers.append(ans[0])
  t = max(map(len, rows))
  ids = np.zeros((len(rows), t), np.int32)
  mask = np.zeros((len(rows), t), np.int32)
  for i, r in enumerate(rows):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
  loss_mask = np.zeros_like(mask)
  loss_mask[:, -2] = 1  # position t-2 predicts the answer token at t-1
  return ids, mask, loss_mask, np.asarray(answers, np.int32)


def multidigit_items(n: int, *, seed: int = 0, ops: Sequence[str] = ("+", "-", "*", "/"),
                     max_digits: int = 2, exclude: set | None = None) -> list[tuple[str, int, int]]:
  """``n`` distinct ``(op, a, b)`` items with operands of 1..``max_digits`` digits.

  Subtraction keeps ``a >= b``; division is exact (``a = b * c``, ``b >= 2``). Items in
  ``exclude`` are skipped, so a held-out set can be drawn disjoint from a training set.
  """
  rng = np.random.default_rng(seed)
  hi = 10 ** max_digits
  out, seen = [], set(exclude or ())
  for _ in range(200 * n):
    if len(out) == n:
      break
    op = ops[int(rng.integers(len(ops)))]
    a, b = int(rng.integers(1, hi)), int(rng.integers(1, hi))
    if op == "-":
      a, b = max(a, b), min(a, b)
    elif op == "/":
      b = int(rng.integers(2, 13))
      a = b * int(rng.integers(1, max(2, hi // b)))
    if (op, a, b) not in seen:
      seen.add((op, a, b))
      out.append((op, a, b))
  if len(out) < n:
    raise ValueError(f"only {len(out)} distinct items exist for these ops/digits; ask for fewer.")
  return out


def encode_items(tok, items: Sequence[tuple[str, int, int]], *, chat: bool = True,
                 ) -> dict[str, np.ndarray]:
  """Left-padded ``ids``/``mask`` and a *target* ``loss_mask`` on every answer token.

  The answer is the decimal result ("What is 12 * 7? Answer with just the number." ->
  "84"); every digit is its own token, so exact match = all answer tokens correct.
  """
  rows, n_ans = [], []
  for op, a, b in items:
    _, fn = OPERATORS[op]
    q = chat_question(op, a, b)
    text = tok.chat([{"role": "user", "content": q}]) if chat else f"{a} {op} {b} = "
    ans = tok.encode(str(int(fn(a, b))))
    rows.append(tok.encode(text) + ans)
    n_ans.append(len(ans))
  t = max(map(len, rows))
  ids = np.zeros((len(rows), t), np.int32)
  mask = np.zeros((len(rows), t), np.int32)
  loss_mask = np.zeros((len(rows), t), np.float32)
  for i, (r, k) in enumerate(zip(rows, n_ans)):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
    loss_mask[i, t - k:] = 1
  return {"ids": ids, "mask": mask, "loss_mask": loss_mask}
