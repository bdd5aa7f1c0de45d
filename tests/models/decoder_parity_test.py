"""Parity: jaxlab logits equal tiny random HF torch models (fp32, left padding, bf16, shards)."""

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder
from jaxlab.models.loaders import load_hf

torch = pytest.importorskip("torch")
import decoder_hf_fixtures as hf_fixtures  # noqa: E402  (see tests/models/conftest.py)


def _compare(model, path, tol=1e-4):
  cfg, params, _ = load_hf(str(path))
  ids, mask = hf_fixtures.batch()
  want = hf_fixtures.torch_logits(model, ids, mask)
  got, _ = decoder.jit_apply(cfg, params, jnp.asarray(ids), jnp.asarray(mask))
  got = np.asarray(got)
  valid = mask.astype(bool)
  np.testing.assert_allclose(got[valid], want[valid], atol=tol, rtol=tol)
  assert np.abs(want[valid]).max() > 1.0  # the fixture is not trivially near zero
  return cfg, params


@pytest.mark.parametrize("kind", ["llama_gqa", "llama_mha_tied", "llama3_rope", "mistral",
                                  "qwen2", "gpt2"])
def test_fp32_logits_match_torch_with_left_padding(kind, tmp_path):
  model = hf_fixtures.build(kind)
  model.save_pretrained(tmp_path)
  cfg, _ = _compare(model, tmp_path)
  assert cfg.arch == ("gpt2" if kind == "gpt2" else "llama")
  if kind in ("llama_gqa", "mistral", "qwen2"):
    assert cfg.group == 2
  assert cfg.qkv_bias == (kind in ("qwen2", "gpt2"))


def test_gpt2_unprefixed_keys(tmp_path):
  """The hub's openai-community/gpt2 file has no `transformer.` prefix: accept both."""
  from safetensors.numpy import load_file, save_file

  model = hf_fixtures.build("gpt2", seed=3)
  model.save_pretrained(tmp_path)
  f = tmp_path / "model.safetensors"
  tensors = load_file(f)
  assert any(k.startswith("transformer.") for k in tensors)
  save_file({k.removeprefix("transformer."): v for k, v in tensors.items()}, f)
  _compare(model, tmp_path)


def test_sharded_checkpoint(tmp_path):
  model = hf_fixtures.build("llama_gqa", seed=4)
  model.save_pretrained(tmp_path, max_shard_size="20KB")
  assert os.path.exists(tmp_path / "model.safetensors.index.json")
  with open(tmp_path / "model.safetensors.index.json") as f:
    assert len(set(json.load(f)["weight_map"].values())) > 1
  _compare(model, tmp_path)


def test_bf16_file_loads_exact_torch_values(tmp_path):
  model = hf_fixtures.build("qwen2", seed=5).to(torch.bfloat16)
  model.save_pretrained(tmp_path)
  cfg, params, _ = load_hf(str(tmp_path), dtype="bfloat16")
  assert params["layers"]["wq"].dtype == jnp.bfloat16
  want = model.model.layers[1].self_attn.q_proj.weight.detach().float().numpy()  # [H*d, D]
  got = np.asarray(params["layers"]["wq"][1].astype(jnp.float32))  # [D, H, d]
  np.testing.assert_array_equal(got.reshape(cfg.d_model, -1).T, want)
  ids, mask = hf_fixtures.batch()
  logits, _ = decoder.jit_apply(cfg, params, jnp.asarray(ids), jnp.asarray(mask))
  assert logits.dtype == jnp.float32 and np.isfinite(np.asarray(logits)).all()


def test_greedy_generation_matches_hf_generate(tmp_path):
  from jaxlab.models.generate import generate

  model = hf_fixtures.build("llama_gqa", seed=6)
  model.save_pretrained(tmp_path)
  cfg, params, _ = load_hf(str(tmp_path))
  ids, mask = hf_fixtures.batch()
  model.generation_config.eos_token_id = None  # 16 tokens, no early stop (stop_ids=() below)
  with torch.no_grad():
    want = model.generate(input_ids=torch.tensor(ids, dtype=torch.long),
                          attention_mask=torch.tensor(mask, dtype=torch.long), do_sample=False,
                          max_new_tokens=16, pad_token_id=0).numpy()
  got = generate(cfg, params, ids, mask, max_new_tokens=16, stop_ids=())
  np.testing.assert_array_equal(np.asarray(got.tokens), want[:, ids.shape[1]:])


def _edit(path, fn):
  from safetensors.numpy import load_file, save_file

  tensors = load_file(path / "model.safetensors")
  save_file(fn(tensors), path / "model.safetensors")


def test_bad_checkpoints_raise_clear_errors(tmp_path):
  from jaxlab.core.errors import CheckpointError, ConfigError

  model = hf_fixtures.build("llama_gqa", seed=7)
  model.save_pretrained(tmp_path)
  name = "model.layers.1.self_attn.k_proj.weight"
  _edit(tmp_path, lambda t: {k: v for k, v in t.items() if k != name})
  with pytest.raises(CheckpointError, match=r"missing tensor 'model\.layers\.1\.self_attn\.k_proj"
                                            r"\.weight' \(expected shape \[32, 64\]\)"):
    load_hf(str(tmp_path))
  _edit(tmp_path, lambda t: {**t, name: np.zeros((16, 64), np.float32)})
  with pytest.raises(CheckpointError, match=r"k_proj\.weight' has shape \[16, 64\], expected "
                                            r"\[32, 64\]"):
    load_hf(str(tmp_path))
  _edit(tmp_path, lambda t: {**t, name: np.zeros((32, 64), np.float32),
                             "model.layers.2.mlp.up_proj.weight": np.zeros((2, 2), np.float32)})
  with pytest.raises(CheckpointError, match="unexpected tensors"):
    load_hf(str(tmp_path))
  conf = json.loads((tmp_path / "config.json").read_text())
  (tmp_path / "config.json").write_text(json.dumps({**conf, "model_type": "bert"}))
  with pytest.raises(ConfigError, match="supported: llama, mistral, qwen2, gpt2"):
    load_hf(str(tmp_path))
  (tmp_path / "config.json").write_text(json.dumps({**conf, "rope_parameters": {
    "rope_type": "yarn", "rope_theta": 1e4, "factor": 2.0}}))
  with pytest.raises(ConfigError, match="rope scaling 'yarn' is not supported"):
    load_hf(str(tmp_path))
