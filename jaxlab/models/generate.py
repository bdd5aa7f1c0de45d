"""Batched KV-cache generation (greedy / temperature / top-p, stop ids, a shared-prefix cache)
and `jaxlab generate`."""

import argparse
import functools
import sys
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.core.errors import ConfigError, JaxlabError
from jaxlab.models import decoder
from jaxlab.models.decoder_config import DecoderConfig


class Generation(NamedTuple):
  """tokens [b, N] int32 (pad after a stop token), done [b] bool, lengths [b] int32."""

  tokens: jax.Array
  done: jax.Array
  lengths: jax.Array


PAD_TO = 32  # default length bucket: prompts (suffixes) are left-padded to a multiple of it


def bucket_len(n: int, pad_to: int | None) -> int:
  """`n` rounded up to a multiple of `pad_to` (`n` itself when `pad_to` is None or <= 1)."""
  if not pad_to or pad_to <= 1:
    return int(n)
  return -(-int(n) // pad_to) * pad_to


def _padded_len(cfg: DecoderConfig, t: int, pad_to: int | None, other: int) -> int:
  """The bucketed prompt length for a cache of `other` more slots, kept within the span the
  decoder accepts (learned position table, sliding window); never below `t`."""
  tb = bucket_len(t, pad_to)
  limits = [x for x in (cfg.sliding_window, cfg.max_positions if cfg.pos == "learned" else None)
            if x is not None]
  if limits and tb + other > min(limits):
    tb = max(t, min(limits) - other)
  return tb


def _pad(x, b_to: int, t_to: int, fill, b_axis: int = 0, t_axis: int | None = 1):
  """`x` left-padded with `fill` along `t_axis` up to `t_to` slots, then its last row along
  `b_axis` repeated up to `b_to` rows (NumPy stays NumPy)."""
  xp = np if isinstance(x, np.ndarray) else jnp
  if t_axis is not None and x.shape[t_axis] < t_to:
    w = [(0, 0)] * x.ndim
    w[t_axis] = (t_to - x.shape[t_axis], 0)
    x = xp.pad(x, w, constant_values=fill)
  if x.shape[b_axis] < b_to:
    w = [(0, 0)] * x.ndim
    w[b_axis] = (0, b_to - x.shape[b_axis])
    x = xp.pad(x, w, mode="edge")
  return x


def pad_batch(ids, mask, b_to: int, t_to: int, pad_id: int = 0):
  """Left-padded (ids, mask) [b, t] grown to [b_to, t_to]: masked pad slots on the left (the
  position ids, `cumsum(mask) - 1`, do not move), then copies of the last row as extra rows
  (drop their outputs). Returns NumPy int32 arrays."""
  ids, mask = np.asarray(ids, np.int32), np.asarray(mask, np.int32)
  return _pad(ids, b_to, t_to, pad_id), _pad(mask, b_to, t_to, 0)


_PER_LAYER_B = ("z_value", "z_delta", "attn_in_value", "mlp_out_value")  # [L, b, ...]


def _pad_intervention(iv: decoder.Intervention, b: int, t: int, b_to: int,
                      t_to: int) -> decoder.Intervention:
  """The intervention of a batch grown by `pad_batch` from [b, t] to [b_to, t_to]: a [b, t]
  position mask and [b, t, D] embeddings get empty slots on the left, a [b] position index
  moves right by the pad, and b-sized batch axes repeat their last row (size-1 axes
  broadcast and are left alone; so is the size-1 t axis of a per-layer value)."""
  if (b, t) == (b_to, t_to):
    return iv
  new = {}
  if iv.z_pos is not None:
    zp = jnp.asarray(iv.z_pos)
    nb = b_to if zp.shape[0] == b else 0
    if zp.ndim == 1:  # an index along the prompt's t axis
      new["z_pos"] = _pad(zp + (t_to - t), nb, 0, 0, t_axis=None)
    else:
      new["z_pos"] = _pad(zp, nb, t_to if zp.shape[1] == t else 0, False)
  if iv.embed_value is not None:
    ev = jnp.asarray(iv.embed_value)
    new["embed_value"] = _pad(ev, b_to if ev.shape[0] == b else 0,
                              t_to if ev.shape[1] == t else 0, 0)
  for name in _PER_LAYER_B:
    x = getattr(iv, name)
    if x is not None and x.ndim > 1 and x.shape[1] == b:
      new[name] = _pad(jnp.asarray(x), b_to, 0, 0, b_axis=1, t_axis=None)
  return iv._replace(**new)


def _rows(out: Generation, b: int) -> Generation:
  """The first `b` rows of a generation (drops padding rows)."""
  return out if out.tokens.shape[0] == b else Generation(*(x[:b] for x in out))


def sample_logits(logits: jax.Array, key: jax.Array, temperature: jax.Array,
                  top_p: jax.Array) -> jax.Array:
  """Next tokens [b] from logits [b, V]: argmax when temperature == 0, else top-p sampling."""
  logits = logits.astype(jnp.float32)
  greedy = jnp.argmax(logits, axis=-1)
  scaled = logits / jnp.maximum(temperature, 1e-6)
  order = jnp.argsort(-scaled, axis=-1)
  sorted_l = jnp.take_along_axis(scaled, order, axis=-1)
  probs = jax.nn.softmax(sorted_l, axis=-1)
  keep = (jnp.cumsum(probs, axis=-1) - probs) < top_p  # always keeps the top token
  pick = jax.random.categorical(key, jnp.where(keep, sorted_l, -jnp.inf), axis=-1)
  sampled = jnp.take_along_axis(order, pick[:, None], axis=-1)[:, 0]
  return jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)


def _decode(cfg, params, last_logits, cache, key, temperature, top_p, stop_ids, step_iv,
            max_new_tokens):
  """Sample from `last_logits` [b, V], then extend `cache` one token at a time until every
  row has emitted a stop id or `max_new_tokens` tokens are out (a traced while loop)."""
  b = last_logits.shape[0]
  pad = cfg.pad_id if cfg.pad_id is not None else 0
  tok = sample_logits(last_logits, jax.random.fold_in(key, 0), temperature, top_p)
  out = jnp.full((b, max_new_tokens), pad, jnp.int32)
  done = jnp.zeros((b,), bool)

  def cond(s):
    i, _, _, done, _ = s
    return (i < max_new_tokens) & ~jnp.all(done)  # early stop: every row has stopped

  def body(s):
    i, tok, cache, done, out = s
    out = out.at[:, i].set(jnp.where(done, pad, tok))
    done = done | jnp.isin(tok, stop_ids)
    logits, _, cache = decoder.extend(cfg, params, tok[:, None], jnp.ones((b, 1), jnp.int32),
                                      cache, intervene=step_iv)
    nxt = sample_logits(logits[:, 0], jax.random.fold_in(key, i + 1), temperature, top_p)
    return i + 1, nxt, cache, done, out

  _, _, _, done, out = jax.lax.while_loop(cond, body, (0, tok, cache, done, out))
  is_stop = jnp.isin(out, stop_ids)
  first_stop = jnp.where(is_stop.any(-1), jnp.argmax(is_stop, -1) + 1, max_new_tokens)
  return Generation(out, done, first_stop.astype(jnp.int32))


@functools.partial(jax.jit, static_argnums=0, static_argnames=("max_new_tokens",))
def _generate(cfg, params, ids, mask, key, temperature, top_p, stop_ids, intervene, *,
              max_new_tokens):
  t = ids.shape[1]
  logits, _, cache = decoder.prefill(cfg, params, ids, mask, t + max_new_tokens,
                                     intervene=intervene)
  step_iv = None if intervene is None else intervene._replace(z_pos=None, embed_value=None)
  return _decode(cfg, params, logits[:, -1], cache, key, temperature, top_p, stop_ids, step_iv,
                 max_new_tokens)


def generate(cfg: DecoderConfig, params: dict, ids, mask, *, max_new_tokens: int,
             key: jax.Array | None = None, temperature: float = 0.0, top_p: float = 1.0,
             stop_ids=None, intervene: decoder.Intervention | None = None,
             pad_to: int | None = PAD_TO, batch_to: int | None = None) -> Generation:
  """Generate up to `max_new_tokens` per row of a left-padded batch with a KV cache.

  Shape buckets: the prompt is left-padded to a multiple of `pad_to` slots and the batch
  grown to a multiple of `batch_to` rows (copies of the last row, dropped from the result),
  so batches of nearby lengths share one compiled program. The extra slots are masked and
  position ids come from the mask, so the tokens are those of the exact shapes (logits equal
  up to float rounding).

  Args:
    cfg: model config.
    params: parameters.
    ids: [b, t] prompt ids, left-padded.
    mask: [b, t] 1 for real tokens.
    max_new_tokens: N (static).
    key: PRNG key for sampling (ignored when greedy).
    temperature: 0 for greedy.
    top_p: nucleus mass in (0, 1].
    stop_ids: stop token ids (default `cfg.eos_ids`); the stop token is kept in `tokens`.
    intervene: applied at prefill and at every decode step; at decode steps `z_pos` is
      ignored (each new token is selected) and `embed_value` is not applied. Its [b, t]
      and [b] fields are padded with the batch (`_pad_intervention`).
    pad_to: prompt-length bucket (default 32; None or 1: the exact length). Capped so the
      cache stays within a learned position table / sliding window. Buckets apply to host
      prompts (lists, NumPy); `ids` given as a `jax.Array` keep their exact shape and
      sharding (a global array across processes cannot be padded on one host).
    batch_to: batch-size bucket (default None: the exact batch).

  Returns:
    Generation(tokens [b, N], done [b], lengths [b]: tokens up to and incl. the stop).
  """
  if max_new_tokens < 1:
    raise ConfigError(f"max_new_tokens={max_new_tokens}; it must be >= 1.")
  if not 0 < top_p <= 1:
    raise ConfigError(f"top_p={top_p}; it must be in (0, 1].")
  stops = tuple(cfg.eos_ids if stop_ids is None else stop_ids) or (-1,)
  key = jax.random.key(0) if key is None else key
  b, t = np.shape(ids)
  b_to, t_to = bucket_len(b, batch_to), _padded_len(cfg, t, pad_to, max_new_tokens)
  if isinstance(ids, jax.Array):  # on device (maybe sharded, maybe spanning processes): the
    b_to, t_to = b, t             # caller chose its shape and layout; host padding would undo it
  if (b_to, t_to) != (b, t):
    ids, mask = pad_batch(ids, mask, b_to, t_to, cfg.pad_id or 0)
    if intervene is not None:
      intervene = _pad_intervention(intervene, b, t, b_to, t_to)
  out = _generate(cfg, params, jnp.asarray(ids, jnp.int32), jnp.asarray(mask, jnp.int32), key,
                  jnp.float32(temperature), jnp.float32(top_p), jnp.asarray(stops, jnp.int32),
                  intervene, max_new_tokens=max_new_tokens)
  return _rows(out, b)


def common_prefix_len(seqs) -> int:
  """Length of the longest token prefix shared by every sequence, leaving each >= 1 token.

  Args:
    seqs: token id sequences (lists or 1-d arrays, no padding).

  Returns:
    n <= min(len) - 1 with seqs[i][:n] equal for all i (0 for an empty list).
  """
  seqs = [np.asarray(s) for s in seqs]
  if not seqs:
    return 0
  cap = min(len(s) for s in seqs) - 1
  if cap <= 0:
    return 0
  block = np.stack([s[:cap] for s in seqs])
  same = np.all(block == block[:1], axis=0)
  return int(cap if same.all() else np.argmin(same))


@functools.partial(jax.jit, static_argnums=0)
def _prefix_cache(cfg, params, ids, mask):
  _, _, cache = decoder.prefill(cfg, params, ids, mask, ids.shape[1])
  return cache


def prefix_cache(cfg: DecoderConfig, params: dict, prefix_ids: jax.Array,
                 pad_to: int | None = None) -> decoder.Cache:
  """KV cache of a prompt prefix shared by a batch: batch 1, P real slots.

  Args:
    cfg: model config.
    params: parameters.
    prefix_ids: [P] or [1, P] token ids.
    pad_to: None: exactly P slots; k: P left-padded (masked slots; the positions of the real
      tokens and of the suffix come from the mask, so they do not move) to a multiple of k,
      so prefixes of nearby lengths share the compiled prefill and suffix programs.

  Returns:
    Cache (k, v [L, 1, S, H_kv, d], mask [1, S] (ones after the left pad), index S) for
    `generate_with_prefix`.
  """
  ids = np.asarray(prefix_ids, np.int32).reshape(1, -1)
  p = ids.shape[1]
  ids, mask = pad_batch(ids, np.ones_like(ids), 1, _padded_len(cfg, p, pad_to, 0),
                        cfg.pad_id or 0)
  return _prefix_cache(cfg, params, jnp.asarray(ids), jnp.asarray(mask))


def _grow_cache(cache: decoder.Cache, b: int, extra: int) -> decoder.Cache:
  """A batch-1 cache broadcast to b rows with `extra` empty (masked) slots appended."""
  def grow(x, slot_axis):
    widths = [(0, 0)] * x.ndim
    widths[slot_axis] = (0, extra)
    x = jnp.pad(x, widths)
    return jnp.broadcast_to(x, x.shape[:slot_axis - 1] + (b,) + x.shape[slot_axis:])
  return decoder.Cache(grow(cache.k, 2), grow(cache.v, 2), grow(cache.mask, 1), cache.index)


def prefill_suffix(cfg: DecoderConfig, params: dict, prefix: decoder.Cache, suffix_ids,
                   suffix_mask, max_len: int):
  """Prefill per-row suffixes after a shared prefix's batch-1 KV cache.

  The prefix cache is broadcast to the b rows and grown to `max_len` slots; the suffix tokens
  take positions P + (index among the row's real suffix tokens), and padded suffix slots are
  masked out of attention and of the returned cache (`decoder.extend`).

  Args:
    cfg: model config.
    params: parameters.
    prefix: `prefix_cache(...)` (batch 1, P slots).
    suffix_ids: [b, t] left-padded suffix ids.
    suffix_mask: [b, t] 1 for real suffix tokens.
    max_len: total cache slots (>= P + t; static under jit).

  Returns:
    (logits [b, t, V] fp32, Cache of max_len slots with index P + t).
  """
  b, t = suffix_ids.shape
  p = prefix.k.shape[2]
  if max_len < p + t:
    raise ConfigError(f"max_len={max_len} < prefix {p} + suffix {t} slots.")
  cache = _grow_cache(prefix, b, max_len - p)
  logits, _, cache = decoder.extend(cfg, params, suffix_ids, suffix_mask, cache)
  return logits, cache


@functools.partial(jax.jit, static_argnums=0, static_argnames=("max_new_tokens",))
def _generate_after(cfg, params, prefix, ids, mask, key, temperature, top_p, stop_ids, *,
                    max_new_tokens):
  max_len = prefix.k.shape[2] + ids.shape[1] + max_new_tokens
  logits, cache = prefill_suffix(cfg, params, prefix, ids, mask, max_len)
  return _decode(cfg, params, logits[:, -1], cache, key, temperature, top_p, stop_ids, None,
                 max_new_tokens)


def generate_with_prefix(cfg: DecoderConfig, params: dict, prefix, suffix_ids, suffix_mask, *,
                         max_new_tokens: int, key: jax.Array | None = None,
                         temperature: float = 0.0, top_p: float = 1.0,
                         stop_ids=None, pad_to: int | None = PAD_TO,
                         batch_to: int | None = None) -> Generation:
  """`generate` for prompts `prefix + suffix[i]` that share a token prefix: the prefix is
  prefilled once (batch 1) and its KV cache broadcast to the batch; only the suffixes are
  prefilled per row. Same result as `generate` on the concatenated, left-padded prompts (up to
  float rounding of a different summation order).

  Args:
    cfg: model config.
    params: parameters.
    prefix: [P] shared token ids (prefilled here, left-padded to a multiple of `pad_to`), or
      `prefix_cache(cfg, params, ids, pad_to)` (reuse it across batches that share the
      prefix).
    suffix_ids: [b, t] per-row rest of the prompt, left-padded; every row needs >= 1 real
      token (the last column).
    suffix_mask: [b, t] 1 for real suffix tokens.
    max_new_tokens, key, temperature, top_p, stop_ids: as `generate`.
    pad_to, batch_to: as `generate`, for the suffix length and the batch; the cache then has
      S + bucketed suffix + N slots, S the prefix cache's slots (bucketed too when the
      prefix cache was built with `pad_to`), so one program serves nearby lengths.

  Returns:
    Generation(tokens [b, N], done [b], lengths [b]) as `generate`.
  """
  if max_new_tokens < 1:
    raise ConfigError(f"max_new_tokens={max_new_tokens}; it must be >= 1.")
  if not 0 < top_p <= 1:
    raise ConfigError(f"top_p={top_p}; it must be in (0, 1].")
  suffix_mask = np.asarray(suffix_mask, np.int32)
  if suffix_mask.ndim != 2 or not suffix_mask[:, -1].all():
    raise ConfigError("every suffix row needs >= 1 real token, left-padded (its last column "
                      "real); keep at least one prompt token out of the shared prefix.")
  if not isinstance(prefix, decoder.Cache):
    p, rest = int(np.size(prefix)), suffix_mask.shape[1] + max_new_tokens
    fits = _padded_len(cfg, p, pad_to, rest) == bucket_len(p, pad_to)  # within a position cap
    prefix = prefix_cache(cfg, params, prefix, pad_to=pad_to if fits else None)
  stops = tuple(cfg.eos_ids if stop_ids is None else stop_ids) or (-1,)
  key = jax.random.key(0) if key is None else key
  b, t = suffix_mask.shape
  b_to = bucket_len(b, batch_to)
  t_to = _padded_len(cfg, t, pad_to, prefix.k.shape[2] + max_new_tokens)
  suffix_ids, suffix_mask = pad_batch(suffix_ids, suffix_mask, b_to, t_to, cfg.pad_id or 0)
  out = _generate_after(cfg, params, prefix, jnp.asarray(suffix_ids, jnp.int32),
                        jnp.asarray(suffix_mask), key, jnp.float32(temperature),
                        jnp.float32(top_p), jnp.asarray(stops, jnp.int32),
                        max_new_tokens=max_new_tokens)
  return _rows(out, b)


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="jaxlab generate", description="Generate text with a "
                              "bundled model or a Hugging Face / GGUF checkpoint.")
  p.add_argument("--model", default="smollm2-135m-instruct",
                 help="'smollm2-135m-instruct', an HF checkpoint directory or a .gguf file")
  p.add_argument("--prompt", action="append", required=True,
                 help="prompt text; repeat for a batch")
  p.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                 help="wrap prompts in the model's chat template (default: if it has one)")
  p.add_argument("--system", default=None, help="system message for --chat")
  p.add_argument("--max-new-tokens", type=int, default=64)
  p.add_argument("--temperature", type=float, default=0.0)
  p.add_argument("--top-p", type=float, default=1.0)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--dtype", default=None,
                 help="parameter and compute dtype (float32 or bfloat16; softmax, norms and "
                      "logits stay float32, the KV cache uses the compute dtype)")
  p.add_argument("--compute-dtype", default=None,
                 help="override the compute dtype alone (e.g. float32 params, bfloat16 compute)")
  p.add_argument("--no-compile-cache", action="store_true",
                 help="do not read or write the persistent XLA compilation cache (`jaxlab "
                      "generate` uses one by default; JAXLAB_COMPILE_CACHE=off does the same)")
  return p


def cli_main(argv: list[str]) -> int:
  """`jaxlab generate ...`; prints one completion per prompt. Returns the exit status."""
  args = _parser().parse_args(argv)
  try:
    from jaxlab.models.loaders import load_model  # noqa: PLC0415 (heavy imports)

    t0 = time.perf_counter()
    cfg, params, tok = load_model(args.model, args.dtype)
    compute = args.compute_dtype or args.dtype
    if compute:
      cfg = cfg.replace(compute_dtype=compute)
    if tok is None:
      raise ConfigError(f"{args.model} has no tokenizer.json; generation needs a tokenizer.")
    chat = tok.chat_template is not None if args.chat is None else args.chat
    texts = [_render(tok, p, chat, args.system) for p in args.prompt]
    # a rendered chat template already holds BOS (as HF apply_chat_template): add none
    ids, mask = tok.batch(texts, special=not chat)
    t1 = time.perf_counter()
    gen = generate(cfg, params, ids, mask, max_new_tokens=args.max_new_tokens,
                   key=jax.random.key(args.seed), temperature=args.temperature,
                   top_p=args.top_p, stop_ids=tok.eos_ids or cfg.eos_ids)
    tokens, lengths = np.asarray(gen.tokens), np.asarray(gen.lengths)
    t2 = time.perf_counter()
  except JaxlabError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  for prompt, row, n in zip(args.prompt, tokens, lengths):
    if len(args.prompt) > 1:
      print(f"### {prompt}")
    print(tok.decode(row[:n]))
  print(f"[load {t1 - t0:.1f}s, generate {t2 - t1:.1f}s for {int(lengths.sum())} tokens]",
        file=sys.stderr)
  return 0


def _render(tok, prompt: str, chat: bool, system: str | None) -> str:
  if not chat:
    return prompt
  msgs = ([{"role": "system", "content": system}] if system else [])
  return tok.chat(msgs + [{"role": "user", "content": prompt}], add_generation_prompt=True)


if __name__ == "__main__":
  sys.exit(cli_main(sys.argv[1:]))
