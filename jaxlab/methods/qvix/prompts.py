"""QVix prompt construction and reply parsing (pure string functions).

* ``scienceqa_question(question, choices)``: the released question string
  ``question + "\\nOptions: " + "\\n".join(choices) + "\\n"``;
* ``build_prequestion_prompt(template, question)``: the LLM's one user message;
* ``parse_prequestions(reply)``: the "Pre-question k:" / "Preliminary Question k:" lines;
* ``build_lvlm_prompt(reply, question, ...)``: the single-pass LVLM prompt.

References:
  Yang et al., "Good Questions Help Zero-Shot Image Reasoning", arXiv 2312.01598.
"""

from __future__ import annotations

import re

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.methods.qvix.released_templates import TEMPLATES

QUESTION_TEMPLATE = "Question: {}Answer:"  # the release's --question; no space before Answer
INSTRUCTION = "Answer the following science question about an image."  # paper figure only
_PREQ = re.compile(r"^\s*[*#>\-\s]*(Pre-question|Preliminary Question)\s*(\d+)\s*[:.)]\s*(.*)$",
                   re.IGNORECASE)


def scienceqa_question(question: str, choices: list[str]) -> str:
  """The released ScienceQA question string (first option on the "Options:" line)."""
  if not choices:
    raise DataError("a ScienceQA item needs at least one choice.")
  return f"{question}\nOptions: " + "\n".join(choices) + "\n"


def options_of(question: str) -> list[str]:
  """The option list recovered from a question string, as the release does it.

  Like the release, the first option keeps the space after "Options:" (the normaliser
  strips it before any comparison).
  """
  if "Options:" not in question:
    raise DataError(f"question has no 'Options:' part: {question[:60]!r}")
  return question.split("Options:")[1].split("\n")[:-1]


def build_prequestion_prompt(template: str, question: str) -> str:
  """The LLM user message: the named released template filled with ``question + "\\n"``."""
  if template not in TEMPLATES:
    raise ConfigError(f"unknown template {template!r}; use one of {sorted(TEMPLATES)}.")
  return TEMPLATES[template].format(question + "\n")


def parse_prequestions(reply: str) -> list[str]:
  """The pre-questions of an LLM reply, in order, text only.

  A line counts when it starts (after optional markdown bullets) with "Pre-question k:" or
  "Preliminary Question k:" (case-insensitive; ``:``, ``.`` or ``)`` after k). Empty texts,
  and the template's own placeholders ("xxxx", "[Your Question Here]") are dropped.
  Malformed replies give fewer (possibly zero) items, never an error.
  """
  out = []
  for line in (reply or "").splitlines():
    m = _PREQ.match(line)
    if not m:
      continue
    text = m.group(3).strip()
    if text and text.lower() not in ("xxxx", "xxx", "[your question here]", "[question text]"):
      out.append(text)
  return out


def format_prequestions(preqs: list[str]) -> str:
  """Clean "Pre-question k: ..." lines (the ``reply_mode="parsed"`` form)."""
  return "\n".join(f"Pre-question {i + 1}: {q}" for i, q in enumerate(preqs))


def build_lvlm_prompt(reply: str | None, question: str, template: str = QUESTION_TEMPLATE,
                      reply_mode: str = "raw", instruction: str | None = None) -> str:
  """The LVLM prompt: ``reply + "\\n" + template.format(question)`` (QVix) or the baseline.

  Args:
    reply: the LLM reply; None gives the baseline ``template.format(question)``.
    question: the full question string (ends with a newline).
    template: the release's ``--question`` string.
    reply_mode: "raw" (the reply as written, the release) or "parsed" (clean lines from
      ``parse_prequestions``; an unparsable reply then contributes nothing).
    instruction: an optional first line (the paper's figure; the release does not use one).
  """
  if reply_mode not in ("raw", "parsed"):
    raise ConfigError(f"reply_mode={reply_mode!r}; use 'raw' or 'parsed'.")
  body = template.format(question)
  if reply is not None:
    ctx = reply if reply_mode == "raw" else format_prequestions(parse_prequestions(reply))
    body = ctx + "\n" + body if ctx else body
  return body if instruction is None else instruction + "\n" + body
