"""Configuration of jaxlab's decoder family (llama and gpt2 variants) and presets."""

import dataclasses

from jaxlab.core.errors import ConfigError

ARCHS = ("llama", "gpt2")


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecoderConfig:
  """Shape and numerics of a decoder LM; hashable, so it can be a static jit argument.

  See docs/decoder.md for the meaning of every field.
  """

  arch: str = "llama"
  vocab_size: int
  d_model: int
  n_layers: int
  n_heads: int
  n_kv_heads: int | None = None
  d_head: int | None = None
  d_ff: int
  norm: str = "rms"
  norm_eps: float = 1e-5
  pos: str = "rope"
  rope_theta: float = 10000.0
  rope_llama3: tuple[float, float, float, int] | None = None
  max_positions: int = 2048
  sliding_window: int | None = None
  mlp: str = "swiglu"
  qkv_bias: bool = False
  o_bias: bool = False
  mlp_bias: bool = False
  tie_embeddings: bool = True
  param_dtype: str = "float32"
  compute_dtype: str = "float32"
  remat: str = "none"
  bos_id: int | None = None
  pad_id: int | None = None
  eos_ids: tuple[int, ...] = ()

  def __post_init__(self):
    checks = [
      (self.arch in ARCHS, f"arch={self.arch!r}; supported: {ARCHS}"),
      (self.norm in ("rms", "layer"), f"norm={self.norm!r}; use 'rms' or 'layer'"),
      (self.pos in ("rope", "learned"), f"pos={self.pos!r}; use 'rope' or 'learned'"),
      (self.mlp in ("swiglu", "gelu_tanh"), f"mlp={self.mlp!r}; use 'swiglu' or 'gelu_tanh'"),
      (self.n_heads % self.kv_heads == 0,
       f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.kv_heads}"),
      (self.param_dtype in ("float32", "bfloat16", "float16"),
       f"param_dtype={self.param_dtype!r}; use float32, bfloat16 or float16"),
      (self.compute_dtype in ("float32", "bfloat16", "float16"),
       f"compute_dtype={self.compute_dtype!r}; use float32, bfloat16 or float16"),
      (self.remat in ("none", "full", "dots"),
       f"remat={self.remat!r}; use 'none', 'full' (recompute each layer) or 'dots' (keep matmuls)"),
      (self.pos != "rope" or self.head_dim % 2 == 0,
       f"RoPE needs an even d_head, got {self.head_dim}"),
    ]
    for ok, msg in checks:
      if not ok:
        raise ConfigError(f"DecoderConfig: {msg}.")

  @property
  def kv_heads(self) -> int:
    """H_kv: number of key/value heads."""
    return self.n_kv_heads or self.n_heads

  @property
  def head_dim(self) -> int:
    """d: width of one head."""
    return self.d_head or self.d_model // self.n_heads

  @property
  def group(self) -> int:
    """G = H // H_kv: query heads per KV group; head h reads group h // G."""
    return self.n_heads // self.kv_heads

  def replace(self, **kw) -> "DecoderConfig":
    """A copy with some fields changed."""
    return dataclasses.replace(self, **kw)


def tiny_llama(gqa: bool = False, vocab_size: int = 96) -> DecoderConfig:
  """Spec H4 fixture: D 128, 4 layers, 8 heads of 16, SwiGLU 384, tied (GQA twin: H_kv 2)."""
  return DecoderConfig(vocab_size=vocab_size, d_model=128, n_layers=4, n_heads=8,
                       n_kv_heads=2 if gqa else 8, d_ff=384, max_positions=64)


def smollm2_135m() -> DecoderConfig:
  """SmolLM2-135M(-Instruct): 30 layers, D 576, 9 heads / 3 KV heads, theta 1e5, tied."""
  return DecoderConfig(vocab_size=49152, d_model=576, n_layers=30, n_heads=9, n_kv_heads=3,
                       d_ff=1536, rope_theta=100000.0, max_positions=8192, norm_eps=1e-5,
                       bos_id=1, pad_id=2, eos_ids=(2,))
