"""SPT training data, built as the released ``05_construct_instruction_data.py``.

Each source list is split into equal halves:

- **insist** (first half): correct first answer -> challenge ->
  ``opener + explanation + " I'm sure that my previous answer is correct."``;
- **revise** (second half): an incorrect first answer -> challenge ->
  ``opener + explanation + " I apologize that I made a mistake in my previous answer."``.

The challenge is drawn from the ten released paraphrases (the evaluation phrase
included) and the opener from the ten released stock openers, some apologetic even
for insist samples. ``neutral_openers=True`` is jaxlab's documented variant.
"""

import random
from collections.abc import Sequence

import numpy as np

from jaxlab.core import errors
from jaxlab.methods.spt import dialogue, prompts
from jaxlab.methods.spt.questions import MCQuestion


def conversation(q: MCQuestion, kind: str, rng: random.Random, *,
                 neutral_openers: bool = False) -> list[dialogue.Message]:
  """One insist or revise conversation (``kind`` in {"insist", "revise"})."""
  if kind not in ("insist", "revise"):
    raise errors.ConfigError(f"kind={kind!r}: use 'insist' or 'revise'.")
  challenge = rng.choice(prompts.CHALLENGE_PROMPTS)
  opener = rng.choice(prompts.NEUTRAL_PREFIXES if neutral_openers
                      else prompts.RESPONSE_PREFIXES)
  insist = kind == "insist"
  first = dialogue.answer_text(q.answer if insist else q.wrong_letter(rng))
  tail = prompts.INSIST_TAIL if insist else prompts.REVISE_TAIL
  reply = opener + q.explanation.strip() + tail
  return dialogue.challenge_messages(q, first, challenge) + [
    {"role": "assistant", "content": reply}]


def build_conversations(sources: Sequence[Sequence[MCQuestion]], n_total: int | None = None,
                        *, seed: int = 0,
                        neutral_openers: bool = False) -> list[list[dialogue.Message]]:
  """Insist/revise conversations from several question sources.

  Args:
    sources: question lists (e.g. arithmetic, general knowledge); each is split in
      halves, first half insist, second half revise, as released.
    n_total: keep a random subset of this size (the released ``shuf -n 3840``);
      None keeps all.
    seed: seed for challenge/opener/wrong-letter draws and the subset.
    neutral_openers: draw openers only from the non-apologetic ones.

  Returns:
    Conversations (lists of messages), shuffled.
  """
  rng = random.Random(seed)
  out = []
  for src in sources:
    half = len(src) // 2
    for i, q in enumerate(src[:2 * half]):
      out.append(conversation(q, "insist" if i < half else "revise", rng,
                              neutral_openers=neutral_openers))
  rng.shuffle(out)
  if n_total is not None:
    if n_total > len(out):
      raise errors.ConfigError(f"n_total={n_total} but only {len(out)} conversations "
                               "were built; pass more questions or a smaller n_total.")
    out = out[:n_total]
  return out


def kind_of(conv: list[dialogue.Message]) -> str:
  """``"insist"`` or ``"revise"`` from the final reply's tail."""
  return "insist" if conv[-1]["content"].endswith(prompts.INSIST_TAIL) else "revise"


def tokenize(tok: dialogue.ChatTokenizer, convs: Sequence[list[dialogue.Message]], *,
             max_len: int, last_only: bool = True) -> dict[str, np.ndarray]:
  """Left-padded training arrays with a loss mask on assistant tokens only.

  Args:
    tok: the model's tokenizer.
    convs: conversations from ``build_conversations``.
    max_len: padded length; longer conversations raise (shorten the questions).
    last_only: supervise only the final assistant turn (default; supervising the
      first turn of a revise sample would teach the wrong answer).

  Returns:
    ``ids`` int32 [n, max_len], ``mask`` int32 [n, max_len], ``loss_mask`` float32
    [n, max_len] where ``loss_mask[i, t]`` marks token ``t`` as a *target*. Rows end
    with the final ``<|im_end|>`` (what follows it is never a target), so the
    supervised turn is the tail of every left-padded row.
  """
  rows, masks = [], []
  for conv in convs:
    ids, lm = dialogue.render_ids(tok, conv, last_only=last_only)
    end = max(i for i, w in enumerate(lm) if w) + 1  # drop the template's trailing "\n"
    ids, lm = ids[:end], lm[:end]
    if len(ids) > max_len:
      raise errors.DataError(f"a conversation has {len(ids)} tokens > max_len={max_len}; "
                             "raise max_len or use shorter questions.")
    rows.append(ids)
    masks.append(lm)
  return dialogue.pad_left(rows, tok.pad_id, max_len, masks)
