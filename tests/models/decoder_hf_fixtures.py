"""Tiny random HF torch models saved offline (save_pretrained), for parity tests."""

import numpy as np

CONFIGS = {
  "llama_gqa": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2)),
  "llama_mha_tied": ("LlamaConfig", "LlamaForCausalLM",
                     dict(num_key_value_heads=4, tie_word_embeddings=True)),
  "llama3_rope": ("LlamaConfig", "LlamaForCausalLM", dict(num_key_value_heads=2, rope_parameters={
    "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 16})),
  "mistral": ("MistralConfig", "MistralForCausalLM", dict(num_key_value_heads=2)),
  "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", dict(num_key_value_heads=2, rms_norm_eps=1e-6)),
  "gpt2": ("GPT2Config", "GPT2LMHeadModel", {}),
}
_LLAMA = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
              num_attention_heads=4, max_position_embeddings=128, rope_theta=1e4,
              rms_norm_eps=1e-5, tie_word_embeddings=False, initializer_range=0.2)
_GPT2 = dict(n_embd=64, n_layer=2, n_head=4, n_positions=128, vocab_size=97,
             initializer_range=0.2, bos_token_id=0, eos_token_id=0)


def build(kind: str, seed: int = 0):
  """A random HF model of `kind` with randomised norm weights (mean 1, std 0.1) and biases."""
  import torch
  import transformers

  conf_cls, model_cls, extra = CONFIGS[kind]
  base = _GPT2 if kind == "gpt2" else _LLAMA
  conf = getattr(transformers, conf_cls)(**{**base, **extra})
  conf._attn_implementation = "eager"
  torch.manual_seed(seed)
  model = getattr(transformers, model_cls)(conf).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if p.ndim == 1 and ("norm" in name or "ln_" in name) and name.endswith("weight"):
        p.copy_(1 + 0.1 * torch.randn_like(p))
      elif p.ndim == 1:
        p.copy_(0.1 * torch.randn_like(p))
  return model


def batch(seed: int = 1, b: int = 3, t: int = 9, vocab: int = 97):
  """Left-padded ids/mask: row 0 full, row 1 has 3 pads, row 2 has 5 pads."""
  rng = np.random.default_rng(seed)
  ids = rng.integers(3, vocab, (b, t)).astype(np.int32)
  mask = np.ones((b, t), np.int32)
  for row, pads in zip(range(1, b), (3, 5)):
    mask[row, :pads] = 0
    ids[row, :pads] = 0
  return ids, mask


def torch_logits(model, ids, mask):
  """HF logits with position ids from the mask (clip(cumsum - 1, 0))."""
  import torch

  ids_t, mask_t = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
  pos = (mask_t.cumsum(-1) - 1).clamp(min=0)
  with torch.no_grad():
    out = model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos)
  return out.logits.float().numpy()
