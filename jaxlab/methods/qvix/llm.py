"""The pre-question LLM: a disk cache, the ``subquestion`` replay hook, a SmolLM2 adapter.

An LLM here is any ``generate_fn(prompts: list[str]) -> list[str]`` (one user message each,
one reply each). ``prequestions`` answers items from, in order: the item's ``subquestion``
field (the release's replay hook: no LLM call), the disk cache, then ``generate_fn`` in
batches. The cache key is the SHA-256 of (template id, SHA-256 of the question, model id,
decoding config), one JSON file per key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np

from jaxlab.core.progress import progress
from jaxlab.methods.qvix.prompts import build_prequestion_prompt


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decoding:
  """Decoding of the pre-question LLM (part of the cache key). Greedy = temperature 0."""

  max_new_tokens: int = 128
  temperature: float = 0.0
  chat_template: str = "model"  # "model": the model's own chat template; "none": raw text


def cache_key(template: str, question: str, model_id: str, decoding: Decoding) -> str:
  """SHA-256 hex of (template id, question hash, model id, decoding config)."""
  q = hashlib.sha256(question.encode()).hexdigest()
  blob = json.dumps([template, q, model_id, dataclasses.asdict(decoding)], sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()


def _path(cache_dir: str | os.PathLike, key: str) -> pathlib.Path:
  return pathlib.Path(cache_dir) / key[:2] / f"{key}.json"


def prequestions(items: Sequence[dict], template: str, generate_fn: Callable | None, *,
                 model_id: str, decoding: Decoding = Decoding(),
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 8) -> list[str]:
  """One LLM reply per item (``item["question"]`` is the full question string).

  Args:
    items: dicts with "question" and optionally "subquestion" (replayed verbatim).
    template: a released template id (``prompts.TEMPLATES``).
    generate_fn: prompts -> replies; may be None when every reply is replayed or cached.
    model_id, decoding: identify the LLM in the cache key.
    cache_dir: where replies are cached (None: no cache).
    batch_size: prompts per ``generate_fn`` call.
  """
  replies: list[str | None] = [None] * len(items)
  todo = []
  for i, it in enumerate(items):
    if it.get("subquestion") is not None:
      replies[i] = it["subquestion"]
      continue
    key = cache_key(template, it["question"], model_id, decoding)
    if cache_dir is not None and _path(cache_dir, key).exists():
      replies[i] = json.loads(_path(cache_dir, key).read_text())["reply"]
    else:
      todo.append((i, key))
  if todo and generate_fn is None:
    raise ValueError(f"{len(todo)} items have no cached or replayed reply and no LLM was given.")
  for s in progress(range(0, len(todo), batch_size), desc=f"pre-questions ({template})"):
    chunk = todo[s:s + batch_size]
    prompts = [build_prequestion_prompt(template, items[i]["question"]) for i, _ in chunk]
    for (i, key), reply in zip(chunk, generate_fn(prompts)):
      replies[i] = reply
      if cache_dir is not None:
        p = _path(cache_dir, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"template": template, "model": model_id, "reply": reply}))
  return replies  # type: ignore[return-value]


def decoder_llm(cfg, params, tok, decoding: Decoding = Decoding()) -> Callable:
  """A ``generate_fn`` over a jaxlab decoder (e.g. SmolLM2): batched, left-padded, greedy."""
  import jax  # noqa: PLC0415

  from jaxlab.models.generate import generate  # noqa: PLC0415

  def fn(prompts: list[str]) -> list[str]:
    chat = decoding.chat_template == "model" and tok.chat_template is not None
    texts = [tok.chat([{"role": "user", "content": p}]) if chat else p for p in prompts]
    ids, mask = tok.batch(texts, special=not chat)
    out = generate(cfg, params, ids, mask, max_new_tokens=decoding.max_new_tokens,
                   temperature=decoding.temperature, key=jax.random.key(0),
                   stop_ids=tok.eos_ids or cfg.eos_ids)
    toks, lens = np.asarray(out.tokens), np.asarray(out.lengths)
    return [tok.decode(r[:n]).strip() for r, n in zip(toks, lens)]

  return fn
