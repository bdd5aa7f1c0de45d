"""Dialogue builder: "Are you sure?" conversations rendered through the chat template.

Messages are plain ``{"role", "content"}`` dicts. Rendering always goes through the
model's own template (``tokenizer.chat``); ``render_ids`` additionally returns a
per-token mask of the assistant turns, built by encoding the template's pieces one
by one (the tests check this equals encoding the whole template string).
"""

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from jaxlab.core import errors
from jaxlab.methods.spt import prompts
from jaxlab.methods.spt.questions import MCQuestion, format_question

Message = dict[str, str]


class ChatTokenizer(Protocol):
  """What the dialogue code needs from ``jaxlab.models.tokenizer.Tokenizer``."""

  eos_ids: Sequence[int]
  pad_id: int

  def encode(self, text: str) -> list[int]: ...

  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str: ...

  def chat(self, messages: list[Message], add_generation_prompt: bool = True) -> str: ...


def question_messages(q: MCQuestion, system: str = prompts.SYSTEM_PROMPT) -> list[Message]:
  """System prompt and the question turn (the multiple_choice script's first turn)."""
  return [{"role": "system", "content": system},
          {"role": "user", "content": format_question(q)}]


def challenge_messages(q: MCQuestion, first: str, challenge: str = prompts.CHALLENGE,
                       system: str = prompts.SYSTEM_PROMPT) -> list[Message]:
  """Question, the first answer, then the challenge turn."""
  return question_messages(q, system) + [
    {"role": "assistant", "content": first}, {"role": "user", "content": challenge}]


def letter_messages(q: MCQuestion, first: str, second: str,
                    challenge: str = prompts.CHALLENGE,
                    system: str = prompts.SYSTEM_PROMPT) -> list[Message]:
  """The full script up to "So what's the answer? Give me a letter."."""
  return challenge_messages(q, first, challenge, system) + [
    {"role": "assistant", "content": second},
    {"role": "user", "content": prompts.LETTER_REQUEST}]


def answer_text(letter: str) -> str:
  """The released first-answer wording: ``"The answer is (B)."``."""
  return f"The answer is ({letter})."


def prompt_text(tok: ChatTokenizer, messages: list[Message], prefill: str = "") -> str:
  """Template string ending with the assistant header (plus an optional prefill)."""
  return tok.chat(messages, add_generation_prompt=True) + prefill


def _eot_text(tok: ChatTokenizer) -> str:
  if not len(tok.eos_ids):
    return ""
  try:
    return tok.decode([int(tok.eos_ids[0])], skip_special=False)
  except TypeError:  # a tokenizer whose decode keeps specials anyway
    return tok.decode([int(tok.eos_ids[0])])


def _assistant_spans(tok: ChatTokenizer, messages: list[Message],
                     last_only: bool) -> list[tuple[int, int]]:
  """Character spans of assistant contents (+ their end-of-turn token)."""
  if not messages or messages[0]["role"] != "system":
    raise errors.DataError("render_ids needs a leading system message, so the template "
                           "adds no default one; prepend {'role': 'system', ...}.")
  eot = _eot_text(tok)
  spans = []
  for i, m in enumerate(messages):
    if m["role"] != "assistant":
      continue
    start = len(tok.chat(messages[:i], add_generation_prompt=True))
    full = tok.chat(messages[:i + 1], add_generation_prompt=False)
    if not full[start:].startswith(m["content"]):
      raise errors.DataError(
        "the chat template does not place assistant content right after the generation "
        "prompt; render_ids supports ChatML-style templates only.")
    end = start + len(m["content"])
    if eot and full[end:].startswith(eot):
      end += len(eot)
    spans.append((start, end))
  return spans[-1:] if last_only else spans


def render_ids(tok: ChatTokenizer, messages: list[Message], *,
               add_generation_prompt: bool = False,
               last_only: bool = False) -> tuple[list[int], list[int]]:
  """Token ids of ``messages`` and a 0/1 mask of assistant tokens (the loss mask).

  The template string is cut at the assistant spans and each piece is encoded
  separately, so the mask is exact; the pieces' ids equal
  ``tok.encode(tok.chat(messages, add_generation_prompt))`` (tested).

  Args:
    tok: the model's tokenizer.
    messages: a conversation starting with a system message.
    add_generation_prompt: append the assistant header.
    last_only: mark only the last assistant turn.

  Returns:
    ``(ids, loss_mask)``, equal-length lists.
  """
  text = tok.chat(messages, add_generation_prompt=add_generation_prompt)
  cuts = [0]
  for a, b in _assistant_spans(tok, messages, last_only):
    cuts += [a, b]
  cuts.append(len(text))
  ids, mask = [], []
  for j in range(len(cuts) - 1):
    piece = tok.encode(text[cuts[j]:cuts[j + 1]]) if cuts[j + 1] > cuts[j] else []
    ids += piece
    mask += [j % 2] * len(piece)
  return ids, mask


def pad_left(rows: Sequence[Sequence[int]], pad_id: int, length: int | None = None,
             extra: Sequence[Sequence[int]] | None = None) -> dict[str, np.ndarray]:
  """Left-pads token rows into ``ids``/``mask`` (and ``extra`` into ``loss_mask``).

  Args:
    rows: token id lists.
    pad_id: the padding id.
    length: padded length (default: the longest row); longer rows keep their tail.
    extra: per-token 0/1 lists padded alongside (the loss mask).

  Returns:
    ``ids`` int32 [b, t], ``mask`` int32 [b, t] (+ ``loss_mask`` float32 [b, t]).
  """
  length = length or max(len(r) for r in rows)
  ids = np.full((len(rows), length), pad_id, np.int32)
  mask = np.zeros((len(rows), length), np.int32)
  loss = np.zeros((len(rows), length), np.float32)
  for i, r in enumerate(rows):
    r = list(r)[-length:]
    ids[i, length - len(r):] = r
    mask[i, length - len(r):] = 1
    if extra is not None:
      e = list(extra[i])[-length:]
      loss[i, length - len(e):] = e
  out = {"ids": ids, "mask": mask}
  if extra is not None:
    out["loss_mask"] = loss
  return out


def encode_prompts(tok: ChatTokenizer, texts: Sequence[str]) -> dict[str, np.ndarray]:
  """Left-padded ``ids``/``mask`` for already-rendered prompt strings."""
  return pad_left([tok.encode(t) for t in texts], tok.pad_id)


def as_list(x: Any) -> list[int]:
  return [int(v) for v in np.asarray(x).tolist()]
