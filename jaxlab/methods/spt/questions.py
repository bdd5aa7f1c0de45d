"""Offline question sources for the "Are you sure?" protocol.

Three sources, all returning ``MCQuestion`` records:

- ``arithmetic_mc``: multiple-choice arithmetic generated in code (seeded);
- ``general_mc``: a jaxlab-authored general-knowledge set shipped as JSON;
- ``load_hf_mc``: MMLU / TruthfulQA-style sets from a local Hugging Face cache
  (never downloads; raises ``AssetMissingError`` when absent).
"""

import dataclasses
import importlib.resources
import json
import random

from jaxlab.core import errors
from jaxlab.methods.spt import prompts

LETTERS = "ABCDEFGHIJ"


@dataclasses.dataclass(frozen=True, kw_only=True)
class MCQuestion:
  """One multiple-choice question.

  Attributes:
    question: the stem, without options.
    options: the option texts, in display order.
    answer: the correct letter (``"A"`` ...).
    explanation: one or two sentences justifying the answer (training data).
    source: a short tag (``"arith"``, ``"general"``, ``"mmlu"`` ...).
  """
  question: str
  options: tuple[str, ...]
  answer: str
  explanation: str = ""
  source: str = ""

  @property
  def answer_index(self) -> int:
    return LETTERS.index(self.answer)

  @property
  def answer_text(self) -> str:
    return self.options[self.answer_index]

  def wrong_letter(self, rng: random.Random) -> str:
    """A uniformly drawn incorrect letter."""
    wrong = [LETTERS[i] for i in range(len(self.options)) if LETTERS[i] != self.answer]
    return rng.choice(wrong)


def format_question(q: MCQuestion, suffix: str = prompts.MC_SUFFIX) -> str:
  """The user turn as released: stem, ``(A) ...`` lines, then the instruction."""
  text = q.question + "\n"
  for letter, option in zip(LETTERS, q.options):
    text += f"({letter}) {option}\n"
  return text + suffix


def _check(q: MCQuestion) -> MCQuestion:
  if len(q.options) < 2 or len(q.options) > len(LETTERS):
    raise errors.DataError(
      f"question {q.question[:40]!r} has {len(q.options)} options; give 2 to "
      f"{len(LETTERS)} options.")
  if q.answer not in LETTERS[:len(q.options)]:
    raise errors.DataError(
      f"question {q.question[:40]!r} has answer {q.answer!r}; use one of "
      f"{LETTERS[:len(q.options)]!r}.")
  return q


def arithmetic_mc(n: int, seed: int = 0, ops: str = "+-",
                  max_operand: int = 20) -> list[MCQuestion]:
  """Seeded multiple-choice arithmetic ("What is 3 + 5?" with four options).

  Distractors are the nearest other non-negative integers; the correct letter is
  spread evenly over A-D.

  Args:
    n: number of questions.
    seed: generator seed.
    ops: operators to draw from, any of ``"+-*"``.
    max_operand: largest operand.

  Returns:
    ``n`` questions, deterministic in ``seed``.
  """
  if n < 0 or not ops or set(ops) - set("+-*"):
    raise errors.ConfigError(
      f"arithmetic_mc(n={n}, ops={ops!r}): use n >= 0 and ops from '+-*'.")
  rng = random.Random(seed)
  out = []
  for i in range(n):
    op = ops[i % len(ops)]
    a, b = rng.randint(1, max_operand), rng.randint(1, max_operand)
    if op == "-" and b > a:
      a, b = b, a
    c = {"+": a + b, "-": a - b, "*": a * b}[op]
    pool = [v for v in range(max(0, c - 4), c + 5) if v != c]
    distractors = rng.sample(pool, 3)
    pos = i % 4
    options = [str(v) for v in distractors[:pos]] + [str(c)] + [
      str(v) for v in distractors[pos:]]
    sym = {"+": "+", "-": "-", "*": "*"}[op]
    out.append(MCQuestion(
      question=f"What is {a} {sym} {b}?", options=tuple(options), answer=LETTERS[pos],
      explanation=f"{a} {sym} {b} = {c}, so the answer is ({LETTERS[pos]}).",
      source="arith"))
  return out


def general_mc() -> list[MCQuestion]:
  """The shipped general-knowledge set (``data/general_mc.json``, 79 questions)."""
  path = importlib.resources.files("jaxlab.methods.spt") / "data" / "general_mc.json"
  rows = json.loads(path.read_text(encoding="utf-8"))
  return [_check(MCQuestion(
    question=r["question"], options=tuple(r["options"]), answer=r["answer"],
    explanation=f"{r['explanation']} So the answer is ({r['answer']}).",
    source="general")) for r in rows]


def _mmlu_rows(ds) -> list[MCQuestion]:
  return [MCQuestion(question=r["question"], options=tuple(r["choices"]),
                     answer=LETTERS[int(r["answer"])], source="mmlu") for r in ds]


def _truthfulqa_rows(ds, seed: int) -> list[MCQuestion]:
  rng = random.Random(seed)
  out = []
  for r in ds:
    choices, labels = r["mc1_targets"]["choices"], r["mc1_targets"]["labels"]
    order = list(range(len(choices)))
    rng.shuffle(order)  # mc1 lists the correct answer first
    options = tuple(choices[j] for j in order)
    answer = LETTERS[[labels[j] for j in order].index(1)]
    out.append(MCQuestion(question=r["question"], options=options[:len(LETTERS)],
                          answer=answer, source="truthfulqa"))
  return [q for q in out if q.answer in LETTERS[:len(q.options)]]


def load_hf_mc(name: str, *, subset: str | None = None, split: str | None = None,
               limit: int | None = None, max_chars: int = 768, seed: int = 0,
               cache_dir: str | None = None) -> list[MCQuestion]:
  """MMLU- or TruthfulQA-style questions from a local Hugging Face cache.

  Args:
    name: ``"mmlu"`` (``cais/mmlu`` layout: question, choices, answer) or
      ``"truthfulqa"`` (``truthful_qa`` multiple_choice layout, mc1 targets), or any
      dataset id / path with one of those layouts.
    subset: dataset config (default ``"all"`` for MMLU, ``"multiple_choice"``).
    split: split (default ``"test"`` for MMLU, ``"validation"`` for TruthfulQA).
    limit: keep the first ``limit`` questions after the length filter.
    max_chars: drop questions longer than this, as the released code does (768).
    seed: option-shuffle seed for TruthfulQA.
    cache_dir: Hugging Face datasets cache directory.

  Returns:
    The questions.

  Raises:
    AssetMissingError: the dataset is not in the local cache.
  """
  import datasets  # pylint: disable=import-outside-toplevel
  truthful = "truthful" in name.lower()
  repo = {"mmlu": "cais/mmlu", "truthfulqa": "truthful_qa"}.get(name.lower(), name)
  subset = subset or ("multiple_choice" if truthful else "all")
  split = split or ("validation" if truthful else "test")
  try:
    ds = datasets.load_dataset(repo, subset, split=split, cache_dir=cache_dir)
  except Exception as e:  # noqa: BLE001 - datasets raises many types offline
    raise errors.AssetMissingError(
      f"dataset {repo!r} ({subset}/{split}) is not in the local Hugging Face cache "
      f"({type(e).__name__}); download it once with datasets.load_dataset({repo!r}, "
      f"{subset!r}) on a machine with network, or use arithmetic_mc/general_mc.") from e
  rows = _truthfulqa_rows(ds, seed) if truthful else _mmlu_rows(ds)
  rows = [_check(q) for q in rows if len(q.question) <= max_chars]
  return rows[:limit] if limit else rows
