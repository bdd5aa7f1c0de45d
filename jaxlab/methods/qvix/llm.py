"""The pre-question LLM: a disk cache, the ``subquestion`` replay hook, a SmolLM2 adapter.

An LLM here is any ``generate_fn(prompts) -> list[str]`` (one reply per prompt); a prompt is
one user message (a str) or, for the few-shot chat variant, a list of ``{"role", "content"}``
messages. ``prequestions`` answers items from, in order: the item's ``subquestion`` field
(the release's replay hook: no LLM call), the disk cache, then ``generate_fn`` in batches.
The cache key is the SHA-256 of (prompt id, SHA-256 of the question, model id, decoding
config), one JSON file per key; the prompt id is the template id for the released zero-shot
prompt (so keys of old replies are unchanged) and ``template+fewshot{k}-{style}-{demo hash}``
with k > 0 demonstrations. ``decoder_llm`` prefills a token prefix shared by a batch's prompts
(the few-shot turns) once and reuses its KV cache (``generate.generate_with_prefix``); the
replies are the plain path's, so the cache keys do not change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
from collections.abc import Callable, Sequence

import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.core.progress import progress
from jaxlab.methods.qvix.prompts import build_prequestion_input, demos_id


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decoding:
  """Decoding of the pre-question LLM (part of the cache key). Greedy = temperature 0."""

  max_new_tokens: int = 128
  temperature: float = 0.0
  chat_template: str = "model"  # "model": the model's own chat template; "none": raw text


def prompt_id(template: str, shots: int = 0, shot_style: str = "chat") -> str:
  """The template id (released zero-shot prompt) or ``template+fewshot{k}-{style}-{hash}``."""
  return template if shots == 0 else f"{template}+{demos_id(shots, shot_style)}"


def cache_key(template: str, question: str, model_id: str, decoding: Decoding,
              shots: int = 0, shot_style: str = "chat") -> str:
  """SHA-256 hex of (prompt id, question hash, model id, decoding config)."""
  q = hashlib.sha256(question.encode()).hexdigest()
  blob = json.dumps([prompt_id(template, shots, shot_style), q, model_id,
                     dataclasses.asdict(decoding)], sort_keys=True)
  return hashlib.sha256(blob.encode()).hexdigest()


def _path(cache_dir: str | os.PathLike, key: str) -> pathlib.Path:
  return pathlib.Path(cache_dir) / key[:2] / f"{key}.json"


def prequestions(items: Sequence[dict], template: str, generate_fn: Callable | None, *,
                 model_id: str, decoding: Decoding = Decoding(),
                 cache_dir: str | os.PathLike | None = None, batch_size: int = 8,
                 shots: int = 0, shot_style: str = "chat") -> list[str]:
  """One LLM reply per item (``item["question"]`` is the full question string).

  Args:
    items: dicts with "question" and optionally "subquestion" (replayed verbatim).
    template: a released template id (``prompts.TEMPLATES``).
    generate_fn: prompts -> replies; may be None when every reply is replayed or cached.
    model_id, decoding: identify the LLM in the cache key.
    cache_dir: where replies are cached (None: no cache).
    batch_size: prompts per ``generate_fn`` call.
    shots, shot_style: hand-written worked demonstrations before the released prompt
      (``prompts.build_prequestion_input``; 0 = the release's zero-shot prompt).
  """
  replies: list[str | None] = [None] * len(items)
  todo = []
  for i, it in enumerate(items):
    if it.get("subquestion") is not None:
      replies[i] = it["subquestion"]
      continue
    key = cache_key(template, it["question"], model_id, decoding, shots, shot_style)
    if cache_dir is not None and _path(cache_dir, key).exists():
      replies[i] = json.loads(_path(cache_dir, key).read_text())["reply"]
    else:
      todo.append((i, key))
  if todo and generate_fn is None:
    raise ValueError(f"{len(todo)} items have no cached or replayed reply and no LLM was given.")
  pid = prompt_id(template, shots, shot_style)
  for s in progress(range(0, len(todo), batch_size), desc=f"pre-questions ({pid})"):
    chunk = todo[s:s + batch_size]
    prompts = [build_prequestion_input(template, items[i]["question"], shots, shot_style)
               for i, _ in chunk]
    for (i, key), reply in zip(chunk, generate_fn(prompts)):
      replies[i] = reply
      if cache_dir is not None:
        p = _path(cache_dir, key)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"template": pid, "model": model_id, "reply": reply}))
  return replies  # type: ignore[return-value]


def _reusable_prefix(stored: dict, rows: list, n_min: int):
  """The longest stored prefix (tuple of ids) that every row starts with and outruns by >= 1."""
  fits = [p for p in stored if n_min <= len(p) < min(len(r) for r in rows)
          and all(tuple(r[:len(p)]) == p for r in rows)]
  return max(fits, key=len, default=None)


def decoder_llm(cfg, params, tok, decoding: Decoding = Decoding(), *,
                min_prefix: int | None = 32, max_prefixes: int = 4, pad_to: int | None = 32,
                batch_to: int | None = None) -> Callable:
  """A ``generate_fn`` over a jaxlab decoder (e.g. SmolLM2): batched, left-padded, greedy.

  A str prompt is one user message; a message list (few-shot chat turns) is rendered whole
  with the chat template (it needs one).

  Shared-prefix cache: when a batch's tokenised prompts share a token prefix of at least
  ``min_prefix`` tokens (the few-shot system + demonstration turns), that prefix is prefilled
  once at batch 1 and its KV cache broadcast to the batch (``generate.generate_with_prefix``);
  the caches of the last ``max_prefixes`` distinct prefixes are kept and reused by later
  batches whose rows all start with one. Same replies as the plain path (up to float rounding);
  ``min_prefix=None`` always takes the plain path.

  Shape buckets (fewer compiles, same replies): prompts, suffixes and shared prefixes are
  left-padded with masked slots to a multiple of ``pad_to`` tokens (``generate``'s option,
  ``prefix_cache(pad_to=)``), so batches (and templates) whose lengths or common prefixes
  differ by a few tokens share one compiled program; ``pad_to=None``: the exact shapes.
  ``batch_to=k`` also grows a short (last) batch to a multiple of k rows (copies of the last
  row, dropped); off by default: on a 2-core CPU padding a last batch of 3 to 8 cost more
  (+10 s) than the compile it saves (~4 s), see docs/qvix.md.
  """
  import jax  # noqa: PLC0415

  from jaxlab.models import generate as gen  # noqa: PLC0415
  from jaxlab.models.tokenizer import pad_left  # noqa: PLC0415

  prefixes: dict[tuple, object] = {}  # prefix ids -> batch-1 KV cache (insertion order = age)

  def prefix_for(rows: list):
    hit = _reusable_prefix(prefixes, rows, min_prefix)
    if hit is None:
      n = gen.common_prefix_len(rows)
      if n < min_prefix:
        return None, 0
      hit = tuple(int(x) for x in rows[0][:n])
      prefixes[hit] = gen.prefix_cache(cfg, params, np.asarray(hit, np.int32), pad_to)
      while len(prefixes) > max_prefixes:
        prefixes.pop(next(iter(prefixes)))
    return prefixes[hit], len(hit)

  def fn(prompts: list[str]) -> list[str]:
    chat = decoding.chat_template == "model" and tok.chat_template is not None
    if not chat and any(not isinstance(p, str) for p in prompts):
      raise ConfigError("few-shot chat turns need the model's chat template; use "
                        "shot_style='prefix' or chat_template='model'.")
    texts = [p if not chat else tok.chat([{"role": "user", "content": p}])
             if isinstance(p, str) else tok.chat(p) for p in prompts]
    ids, mask = tok.batch(texts, special=not chat)
    kw = dict(max_new_tokens=decoding.max_new_tokens, temperature=decoding.temperature,
              key=jax.random.key(0), stop_ids=tok.eos_ids or cfg.eos_ids, pad_to=pad_to,
              batch_to=batch_to)
    rows = [r[m.astype(bool)] for r, m in zip(np.asarray(ids), np.asarray(mask))]
    cache, n = (None, 0) if min_prefix is None else prefix_for(rows)
    if cache is None:
      out = gen.generate(cfg, params, ids, mask, **kw)
    else:
      s_ids, s_mask = pad_left([r[n:] for r in rows], tok.pad_id)
      out = gen.generate_with_prefix(cfg, params, cache, s_ids, s_mask, **kw)
    toks, lens = np.asarray(out.tokens), np.asarray(out.lengths)
    return [tok.decode(r[:k]).strip() for r, k in zip(toks, lens)]

  return fn
