"""Special tokens and pre-tokenizers as Hugging Face adds them: parity with AutoTokenizer."""

import json
import os

import pydoc_data.topics
import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from jaxlab.core.errors import ConfigError
from jaxlab.models.tokenizer import _LLAMA3_SPLIT, Tokenizer, gguf_pre_tokenizer

TEXTS = ["Hello world", "  leading spaces and 12345 digits, it's   done.\n\nNew line!",
         "<|begin_of_text|>already special<|eot_id|> tail", "éàü 東京 😀 x=3.14159"]
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]


def _llama3_style(path):
  """A small byte-level BPE with Llama 3's split regex and BOS post-processor, saved as HF."""
  tk = tokenizers.Tokenizer(models.BPE())
  tk.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(tokenizers.Regex(_LLAMA3_SPLIT), behavior="isolated"),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
  tk.decoder = decoders.ByteLevel()
  corpus = list(pydoc_data.topics.topics.values())[:40]
  tk.train_from_iterator(corpus, trainers.BpeTrainer(
    vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    show_progress=False))
  bos = tk.token_to_id(SPECIAL[0])
  tk.post_processor = processors.TemplateProcessing(
    single=f"{SPECIAL[0]} $A", pair=f"{SPECIAL[0]} $A {SPECIAL[0]} $B",
    special_tokens=[(SPECIAL[0], bos)])
  tk.save(os.path.join(path, "tokenizer.json"))
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"bos_token": SPECIAL[0], "eos_token": SPECIAL[1],
               "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096}, f)
  return tk


def _as_gguf_meta(tk, pre):
  vocab = tk.get_vocab(with_added_tokens=True)
  toks = [t for t, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
  merges = json.loads(tk.to_str())["model"]["merges"]
  merges = [m if isinstance(m, str) else " ".join(m) for m in merges]
  return {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre, "tokenizer.ggml.tokens": toks,
          "tokenizer.ggml.merges": merges,
          "tokenizer.ggml.token_type": [3 if t in SPECIAL else 1 for t in toks],
          "tokenizer.ggml.bos_token_id": vocab[SPECIAL[0]],
          "tokenizer.ggml.eos_token_id": vocab[SPECIAL[1]], "tokenizer.ggml.add_bos_token": True}


def test_llama3_style_tokenizer_matches_autotokenizer(tmp_path):
  import transformers  # noqa: PLC0415

  tk = _llama3_style(str(tmp_path))
  ref = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
  ours = Tokenizer.from_dir(str(tmp_path))
  gg = Tokenizer.from_gguf(_as_gguf_meta(tk, "llama-bpe"))
  for text in TEXTS:
    want = ref(text)["input_ids"]
    assert want[0] == tk.token_to_id(SPECIAL[0])  # BOS from the post-processor
    assert ours.encode(text) == want, text
    assert gg.encode(text) == want, text  # BOS and pre-tokenizer from GGUF metadata
    assert ours.encode(text, special=False) == ref(text, add_special_tokens=False)["input_ids"]
  # the SmolLM2 rule (single digits) on the same vocabulary differs: the metadata matters
  assert Tokenizer.from_gguf(_as_gguf_meta(tk, "smollm")).encode(TEXTS[1]) != \
    ref(TEXTS[1])["input_ids"]


def test_smollm2_tokenizer_matches_autotokenizer_from_gguf():
  import transformers  # noqa: PLC0415

  from jaxlab.models.loaders import gguf_file  # noqa: PLC0415

  path = gguf_file.smollm2_path()
  ref = transformers.AutoTokenizer.from_pretrained(os.path.dirname(path),
                                                   gguf_file=os.path.basename(path))
  ours = Tokenizer.from_gguf(gguf_file._open(path)[0])
  for text in TEXTS + ["<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"]:
    assert ours.encode(text) == ref(text)["input_ids"], text


def test_unknown_gguf_pre_tokenizer_is_refused():
  with pytest.raises(ConfigError, match="tokenizer.ggml.pre='deepseek-coder'"):
    gguf_pre_tokenizer("deepseek-coder")
