"""Tokenizers (HF `tokenizers`) from tokenizer.json or GGUF metadata, plus chat templates."""

import json
import os
import re
from collections.abc import Sequence

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers

from jaxlab.core.errors import ConfigError, DataError

_CHATML_SYSTEM = re.compile(r"<\|im_start\|>system\n(.*?)<\|im_end\|>", re.S)


class Tokenizer:
  """Encode / decode / left-pad / chat-format text for a decoder LM.

  Attributes:
    tk: the underlying `tokenizers.Tokenizer`.
    bos_id, pad_id: special ids (pad falls back to the first eos id, then 0).
    eos_ids: tuple of stop ids.
    chat_template: the model's Jinja chat template, or None.
    add_bos: whether `encode` prepends `bos_id` (tokenizers without a post-processor).
    post_process: whether `encode` runs the tokenizer's own post-processor, which adds BOS
      and other special tokens exactly as `AutoTokenizer` does (tokenizer.json files).
  """

  def __init__(self, tk: tokenizers.Tokenizer, *, bos_id: int | None = None,
               eos_ids: Sequence[int] = (), pad_id: int | None = None,
               chat_template: str | None = None, add_bos: bool = False,
               post_process: bool = False):
    self.tk, self.bos_id, self.eos_ids = tk, bos_id, tuple(eos_ids)
    self.pad_id = pad_id if pad_id is not None else (self.eos_ids[0] if self.eos_ids else 0)
    self.chat_template, self.add_bos, self.post_process = chat_template, add_bos, post_process
    self.tk.no_padding()
    self.tk.no_truncation()

  @property
  def vocab_size(self) -> int:
    return self.tk.get_vocab_size(with_added_tokens=True)

  def encode(self, text: str, special: bool = True) -> list[int]:
    """Token ids of `text` (special tokens written in the text are recognised).

    `special=True` adds BOS etc. as the tokenizer's post-processor (or GGUF add_bos) says,
    like `AutoTokenizer(text)`; use False for text that already holds them (chat templates).
    """
    if not special:
      return self.tk.encode(text, add_special_tokens=False).ids
    if self.post_process:
      return self.tk.encode(text, add_special_tokens=True).ids
    ids = self.tk.encode(text, add_special_tokens=False).ids
    return ([self.bos_id] + ids) if self.add_bos and self.bos_id is not None else ids

  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
    """Text of `ids` (numpy or list)."""
    return self.tk.decode([int(i) for i in ids], skip_special_tokens=skip_special)

  def tokens(self, text: str) -> list[str]:
    """Token strings of `text` (for inspection)."""
    return self.tk.encode(text, add_special_tokens=False).tokens

  def batch(self, texts: Sequence[str], length: int | None = None,
            special: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded batch.

    Args:
      texts: b strings.
      length: pad to this many tokens (default: the longest); longer texts raise.
      special: add special tokens as `encode` does.

    Returns:
      ids [b, t] int32 and mask [b, t] int32 (1 = real token).
    """
    return pad_left([self.encode(t, special) for t in texts], self.pad_id, length)

  def chat(self, messages: Sequence[dict], add_generation_prompt: bool = True) -> str:
    """Render `[{"role", "content"}, ...]` with the model's chat template."""
    tpl = self.chat_template
    if tpl is None:
      raise ConfigError("this tokenizer has no chat template; pass plain text (--no-chat).")
    if _is_smol_chatml(tpl):
      return chatml(messages, _CHATML_SYSTEM.search(tpl).group(1),
                    add_generation_prompt)
    try:
      import jinja2.sandbox
    except ImportError as e:
      raise ConfigError("rendering this chat template needs jinja2: pip install jinja2") from e
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    name = lambda i: "" if i is None else (self.tk.id_to_token(i) or "")
    return env.from_string(tpl).render(
      messages=list(messages), bos_token=name(self.bos_id),
      eos_token=name(self.eos_ids[0] if self.eos_ids else None),
      add_generation_prompt=add_generation_prompt)

  @classmethod
  def from_dir(cls, path: str) -> "Tokenizer | None":
    """From an HF directory's tokenizer.json (+ tokenizer_config.json); None if absent."""
    f = os.path.join(path, "tokenizer.json")
    if not os.path.exists(f):
      return None
    tk = tokenizers.Tokenizer.from_file(f)
    conf = _read_json(os.path.join(path, "tokenizer_config.json"))
    gen = _read_json(os.path.join(path, "generation_config.json"))
    tpl = conf.get("chat_template")
    if tpl is None and os.path.exists(os.path.join(path, "chat_template.jinja")):
      with open(os.path.join(path, "chat_template.jinja")) as fh:
        tpl = fh.read()
    tid = lambda s: None if s is None else tk.token_to_id(s if isinstance(s, str) else s["content"])
    eos = gen.get("eos_token_id", tid(conf.get("eos_token")))
    eos = tuple(eos) if isinstance(eos, list) else (() if eos is None else (eos,))
    return cls(tk, bos_id=tid(conf.get("bos_token")), eos_ids=eos,
               pad_id=tid(conf.get("pad_token")), chat_template=tpl,
               add_bos=bool(conf.get("add_bos_token", False)),
               post_process=tk.post_processor is not None)

  @classmethod
  def from_gguf(cls, meta: dict) -> "Tokenizer":
    """Byte-level BPE rebuilt from GGUF `tokenizer.ggml.*` metadata (gpt2-style models)."""
    if meta.get("tokenizer.ggml.model") != "gpt2":
      raise ConfigError(f"GGUF tokenizer model {meta.get('tokenizer.ggml.model')!r} is not "
                        "supported; only byte-level BPE ('gpt2') is.")
    toks = meta["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
    tk = tokenizers.Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(toks)}, merges=merges))
    tk.pre_tokenizer = gguf_pre_tokenizer(meta.get("tokenizer.ggml.pre"))
    tk.decoder = decoders.ByteLevel()
    types = meta.get("tokenizer.ggml.token_type", [1] * len(toks))
    tk.add_special_tokens([tokenizers.AddedToken(toks[i], special=True, normalized=False)
                           for i, ty in enumerate(types) if ty == 3])
    eos = meta.get("tokenizer.ggml.eos_token_id")
    return cls(tk, bos_id=meta.get("tokenizer.ggml.bos_token_id"),
               eos_ids=() if eos is None else (int(eos),),
               pad_id=meta.get("tokenizer.ggml.padding_token_id"),
               chat_template=meta.get("tokenizer.chat_template"),
               add_bos=bool(meta.get("tokenizer.ggml.add_bos_token", False)))


_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?"
                 r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?"
                r"[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _split_then_bytes(pattern: str):
  return pre_tokenizers.Sequence([
    pre_tokenizers.Split(tokenizers.Regex(pattern), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])


def gguf_pre_tokenizer(name: str | None):
  """The HF pre-tokenizer for a GGUF `tokenizer.ggml.pre` value (llama.cpp's names).

  Raises:
    ConfigError: for a pre-tokenizer jaxlab does not reproduce.
  """
  byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
  table = {
    None: lambda: byte_level, "default": lambda: byte_level, "gpt-2": lambda: byte_level,
    "gpt2": lambda: byte_level,
    "smollm": lambda: pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                               byte_level]),
    "llama-bpe": lambda: _split_then_bytes(_LLAMA3_SPLIT),
    "llama3": lambda: _split_then_bytes(_LLAMA3_SPLIT),
    "qwen2": lambda: _split_then_bytes(_QWEN2_SPLIT),
  }
  if name not in table:
    known = ", ".join(sorted(k for k in table if k))
    raise ConfigError(f"GGUF pre-tokenizer tokenizer.ggml.pre={name!r} is not supported; "
                      f"supported: {known}. Load the model's HF tokenizer.json instead.")
  return table[name]()


def pad_left(seqs: Sequence[Sequence[int]], pad_id: int,
             length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Left-pad token lists into (ids [b, t] int32, mask [b, t] int32)."""
  t = max(len(s) for s in seqs) if length is None else length
  if any(len(s) > t for s in seqs):
    raise DataError(f"a sequence of {max(len(s) for s in seqs)} tokens exceeds length={t}; "
                    "raise the length or shorten the text.")
  ids = np.full((len(seqs), t), pad_id, np.int32)
  mask = np.zeros((len(seqs), t), np.int32)
  for i, s in enumerate(seqs):
    if len(s):
      ids[i, t - len(s):], mask[i, t - len(s):] = s, 1
  return ids, mask


def chatml(messages: Sequence[dict], default_system: str | None,
           add_generation_prompt: bool = True) -> str:
  """ChatML rendering as SmolLM2's template: default system turn, `<|im_start|>role\\n...`."""
  out = []
  if messages and messages[0]["role"] != "system" and default_system is not None:
    out.append(f"<|im_start|>system\n{default_system}<|im_end|>\n")
  out += [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
  if add_generation_prompt:
    out.append("<|im_start|>assistant\n")
  return "".join(out)


def _is_smol_chatml(tpl: str) -> bool:
  """True for the exact SmolLM2-style ChatML template that `chatml` reproduces."""
  m = _CHATML_SYSTEM.search(tpl)
  return m is not None and tpl == _SMOL_TEMPLATE.replace("{SYSTEM}", m.group(1))


_SMOL_TEMPLATE = (
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
  "{{ '<|im_start|>system\n{SYSTEM}<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + "
  "message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def _read_json(path: str) -> dict:
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)
