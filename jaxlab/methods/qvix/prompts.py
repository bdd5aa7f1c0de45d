"""QVix prompt construction and reply parsing (pure string functions).

* ``scienceqa_question(question, choices)``: the released question string
  ``question + "\\nOptions: " + "\\n".join(choices) + "\\n"``;
* ``build_prequestion_prompt(template, question)``: the LLM's one user message;
* ``build_prequestion_input(template, question, shots, shot_style)``: the same message,
  optionally preceded by k hand-written worked demonstrations (an option; not the release);
* ``parse_prequestions(reply, mode)``: the "Pre-question k:" / "Preliminary Question k:"
  lines (``mode="lenient"`` also takes numbered / bulleted lines ending in "?");
* ``build_lvlm_prompt(reply, question, ...)``: the single-pass LVLM prompt.

References:
  Yang et al., "Good Questions Help Zero-Shot Image Reasoning", arXiv 2312.01598.
"""

from __future__ import annotations

import hashlib
import json
import re

from jaxlab.core.errors import ConfigError, DataError
from jaxlab.methods.qvix.released_templates import TEMPLATES

QUESTION_TEMPLATE = "Question: {}Answer:"  # the release's --question; no space before Answer
INSTRUCTION = "Answer the following science question about an image."  # paper figure only
_PREQ = re.compile(r"^\s*[*#>\-\s]*(Pre-question|Preliminary Question)\s*(\d+)\s*[:.)]\s*(.*)$",
                   re.IGNORECASE)
# lenient mode only: a numbered ("1." "2)" "(3)") or bulleted ("-" "*" "+" "•") line ending in "?"
_LISTED = re.compile(r"^\s*(?:\d+\s*[.):]|\(\d+\)|[-*+\u2022])\s*(.*\?)\**\s*$")
PARSE_MODES = ("strict", "lenient")
SHOT_STYLES = ("chat", "prefix")

# Hand-written worked demonstrations for the few-shot pre-question writer (jaxlab's, NOT from
# the release or the paper; not copies of any evaluation item). Generic visual-question types:
# counting, colour, left/right, size comparison; everyday objects that the generated scenes
# never contain (birds, umbrellas, dogs, fruit), so a reply that copies a demo is detectable.
# Question strings use the released ScienceQA format. Edit => new cache keys (demo hash).
PREQUESTION_DEMOS: tuple[tuple[str, str], ...] = (
  ("How many birds are sitting on the fence?\nOptions: 2\n3\n4\n5\n",
   "Pre-question 1: Where is the fence in the image?\n"
   "Pre-question 2: Which animals are sitting on the fence?\n"
   "Pre-question 3: Are some birds hidden behind other birds?"),
  ("What colour is the umbrella the woman is holding?\nOptions: black\npink\nwhite\n",
   "Pre-question 1: Where is the woman in the image?\n"
   "Pre-question 2: Which object in her hand is the umbrella?"),
  ("Is the dog on the left side or the right side of the car?\nOptions: left side\n"
   "right side\n",
   "Pre-question 1: Where is the car in the image?\n"
   "Pre-question 2: Where is the dog in the image?\n"
   "Pre-question 3: Which of the two is closer to the left edge of the image?"),
  ("Which fruit looks bigger, the apple or the melon?\nOptions: apple\nmelon\n",
   "Pre-question 1: Where are the apple and the melon in the image?\n"
   "Pre-question 2: How much of the image does the apple cover?\n"
   "Pre-question 3: How much of the image does the melon cover?"),
)


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


def demos_id(shots: int, shot_style: str = "chat") -> str:
  """Names the few-shot variant for cache keys: ``fewshot{k}-{style}-{sha of the k demos}``."""
  blob = json.dumps(PREQUESTION_DEMOS[:shots])
  return f"fewshot{shots}-{shot_style}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def _in_template_format(template: str, reply: str) -> str:
  """A demo reply in the template's own line format ("Preliminary Question k:" for gptrewrite)."""
  if "Preliminary Question 1:" in TEMPLATES[template]:
    return reply.replace("Pre-question ", "Preliminary Question ")
  return reply


def build_prequestion_input(template: str, question: str, shots: int = 0,
                            shot_style: str = "chat") -> str | list[dict]:
  """The LLM input: the released prompt, optionally after ``shots`` worked demonstrations.

  ``shots=0`` returns exactly ``build_prequestion_prompt(template, question)`` (the release).
  With ``shots=k`` the first k ``PREQUESTION_DEMOS`` (hand-written by jaxlab) come first, each
  as the same template filled with the demo question and its reply, written in the template's
  line format ("Pre-question k:" for hand_v1, "Preliminary Question k:" for gptrewrite_v*):

  * ``shot_style="chat"``: a message list, demo user/assistant turns, then the real user turn;
  * ``shot_style="prefix"``: one user message, "Example k:" blocks then "Now your turn:" and
    the released prompt for the real item.
  """
  if not 0 <= shots <= len(PREQUESTION_DEMOS):
    raise ConfigError(f"prequestion_shots={shots}; use 0..{len(PREQUESTION_DEMOS)}.")
  if shot_style not in SHOT_STYLES:
    raise ConfigError(f"shot_style={shot_style!r}; use one of {SHOT_STYLES}.")
  real = build_prequestion_prompt(template, question)
  if shots == 0:
    return real
  demos = [(build_prequestion_prompt(template, q), _in_template_format(template, r))
           for q, r in PREQUESTION_DEMOS[:shots]]
  if shot_style == "chat":
    turns = [m for u, a in demos for m in ({"role": "user", "content": u},
                                           {"role": "assistant", "content": a})]
    return turns + [{"role": "user", "content": real}]
  blocks = [f"Example {k + 1}:\n{u}\n\n{a}" for k, (u, a) in enumerate(demos)]
  return "\n\n".join(blocks) + "\n\nNow your turn:\n" + real


def parse_prequestions(reply: str, mode: str = "strict") -> list[str]:
  """The pre-questions of an LLM reply, in order, text only.

  ``mode="strict"`` (default, the release's format): a line counts when it starts (after
  optional markdown bullets) with "Pre-question k:" or "Preliminary Question k:"
  (case-insensitive; ``:``, ``.`` or ``)`` after k). ``mode="lenient"`` (an option; it changes
  what counts as a pre-question) also takes numbered ("1.", "2)", "(3)") or bulleted ("-",
  "*", "+", "•") lines whose text ends in "?". Empty texts, and the template's own
  placeholders ("xxxx", "[Your Question Here]") are dropped. Malformed replies give fewer
  (possibly zero) items, never an error.
  """
  if mode not in PARSE_MODES:
    raise ConfigError(f"parse_mode={mode!r}; use one of {PARSE_MODES}.")
  out = []
  for line in (reply or "").splitlines():
    m = _PREQ.match(line)
    if m:
      text = m.group(3).strip()
    elif mode == "lenient" and (m := _LISTED.match(line)):
      text = m.group(1).strip().strip("*").strip()
    else:
      continue
    if text and text.lower() not in ("xxxx", "xxx", "[your question here]", "[question text]"):
      out.append(text)
  return out


def format_prequestions(preqs: list[str]) -> str:
  """Clean "Pre-question k: ..." lines (the ``reply_mode="parsed"`` form)."""
  return "\n".join(f"Pre-question {i + 1}: {q}" for i, q in enumerate(preqs))


def build_lvlm_prompt(reply: str | None, question: str, template: str = QUESTION_TEMPLATE,
                      reply_mode: str = "raw", instruction: str | None = None,
                      parse_mode: str = "strict") -> str:
  """The LVLM prompt: ``reply + "\\n" + template.format(question)`` (QVix) or the baseline.

  Args:
    reply: the LLM reply; None gives the baseline ``template.format(question)``.
    question: the full question string (ends with a newline).
    template: the release's ``--question`` string.
    reply_mode: "raw" (the reply as written, the release) or "parsed" (clean lines from
      ``parse_prequestions``; an unparsable reply then contributes nothing).
    instruction: an optional first line (the paper's figure; the release does not use one).
    parse_mode: ``parse_prequestions`` mode of ``reply_mode="parsed"``.
  """
  if reply_mode not in ("raw", "parsed"):
    raise ConfigError(f"reply_mode={reply_mode!r}; use 'raw' or 'parsed'.")
  body = template.format(question)
  if reply is not None:
    ctx = (reply if reply_mode == "raw"
           else format_prequestions(parse_prequestions(reply, parse_mode)))
    body = ctx + "\n" + body if ctx else body
  return body if instruction is None else instruction + "\n" + body
