"""jaxlab decoder parameters -> Hugging Face Llama tensor names (the loader's inverse)."""

import numpy as np

from jaxlab.core.errors import ConfigError
from jaxlab.models.decoder_config import DecoderConfig


def hf_llama_tensors(cfg: DecoderConfig, params: dict) -> dict[str, np.ndarray]:
  """HF Llama/Mistral/Qwen2 state-dict arrays (fp32 numpy) from jaxlab params.

  Used to build a transformers reference model on the same weights (tests, benchmarks).
  """
  if cfg.arch != "llama":
    raise ConfigError(f"hf_llama_tensors needs arch='llama', got {cfg.arch!r}.")
  f32 = lambda a: np.ascontiguousarray(np.asarray(a, np.float32))
  lay, dm = {k: np.asarray(v, np.float32) for k, v in params["layers"].items()}, cfg.d_model
  head = params["embed"] if cfg.tie_embeddings else np.asarray(params["unembed"]).T
  out = {"model.embed_tokens.weight": params["embed"], "lm_head.weight": head,
         "model.norm.weight": params["final_norm_scale"]}
  for i in range(cfg.n_layers):
    p, a = f"model.layers.{i}.", f"model.layers.{i}.self_attn."
    out.update({p + "input_layernorm.weight": lay["attn_norm_scale"][i],
                p + "post_attention_layernorm.weight": lay["mlp_norm_scale"][i],
                a + "q_proj.weight": lay["wq"][i].reshape(dm, -1).T,
                a + "k_proj.weight": lay["wk"][i].reshape(dm, -1).T,
                a + "v_proj.weight": lay["wv"][i].reshape(dm, -1).T,
                a + "o_proj.weight": lay["wo"][i].reshape(-1, dm).T,
                p + "mlp.gate_proj.weight": lay["w_gate"][i].T,
                p + "mlp.up_proj.weight": lay["w_up"][i].T,
                p + "mlp.down_proj.weight": lay["w_down"][i].T})
    for b, name in (("bq", "q_proj"), ("bk", "k_proj"), ("bv", "v_proj")):
      if b in lay:
        out[a + name + ".bias"] = lay[b][i].reshape(-1)
  return {k: f32(v) for k, v in out.items()}


def torch_llama(cfg: DecoderConfig, params: dict, attn_implementation: str = "sdpa"):
  """A transformers `LlamaForCausalLM` (eval, fp32) holding the same weights as `params`."""
  import torch  # noqa: PLC0415
  import transformers  # noqa: PLC0415

  conf = transformers.LlamaConfig(
    vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
    num_hidden_layers=cfg.n_layers, num_attention_heads=cfg.n_heads,
    num_key_value_heads=cfg.kv_heads, head_dim=cfg.head_dim, rope_theta=cfg.rope_theta,
    rms_norm_eps=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
    max_position_embeddings=cfg.max_positions, attention_bias=cfg.qkv_bias,
    bos_token_id=cfg.bos_id, eos_token_id=None, pad_token_id=cfg.pad_id)
  conf._attn_implementation = attn_implementation
  with torch.device("meta"):
    model = transformers.LlamaForCausalLM(conf)
  sd = {k: torch.from_numpy(v.copy()) for k, v in hf_llama_tensors(cfg, params).items()}
  model.load_state_dict(sd, assign=True, strict=False)
  model.tie_weights()
  model.model.rotary_emb = type(model.model.rotary_emb)(config=conf)  # real, non-meta buffers
  return model.eval()
