"""Loading straight into shards (safetensors, GGUF), hub ids from the local HF cache."""

import json
import os

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxlab.core.errors import AssetMissingError, ConfigError
from jaxlab.core.sharding import make_mesh
from jaxlab.models import decoder, decoder_mesh
from jaxlab.models.loaders import export, gguf_file, load_hf, load_model

CFG = decoder.DecoderConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=8, n_kv_heads=4,
                            d_ff=64, rope_theta=100.0, max_positions=32, tie_embeddings=False,
                            qkv_bias=True)


def _write_checkpoint(path, seed=0):
  """An HF Llama/Qwen2-style checkpoint in two safetensors shards plus an index."""
  params = decoder.init_params(CFG, jax.random.key(seed))
  tensors = export.hf_llama_tensors(CFG, params)
  names = sorted(tensors)
  half = {n: ("model-1.safetensors" if i % 2 else "model-2.safetensors")
          for i, n in enumerate(names)}
  for shard in set(half.values()):
    save_file({n: tensors[n] for n in names if half[n] == shard}, os.path.join(path, shard))
  with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {}, "weight_map": half}, f)
  conf = dict(model_type="qwen2", vocab_size=64, hidden_size=32, intermediate_size=64,
              num_hidden_layers=2, num_attention_heads=8, num_key_value_heads=4,
              max_position_embeddings=32, rope_theta=100.0, rms_norm_eps=1e-5,
              tie_word_embeddings=False)
  with open(os.path.join(path, "config.json"), "w") as f:
    json.dump(conf, f)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("ckpt"))
  _write_checkpoint(path)
  return path


@pytest.mark.parametrize("shape", [{"data": 2, "model": 4}, {"data": 1, "model": 8}],
                         ids=["d2m4", "d1m8"])
def test_sharded_safetensors_load_equals_whole_and_splits_bytes(ckpt, shape):
  mesh = make_mesh(shape)
  cfg, whole, _ = load_hf(ckpt)
  cfg2, got, _ = load_hf(ckpt, mesh=mesh)
  assert cfg2 == cfg
  want = decoder_mesh.param_shardings(cfg, mesh)
  model = shape["model"]
  for (path, a), b, sh in zip(jax.tree_util.tree_flatten_with_path(got)[0],
                              jax.tree.leaves(whole), jax.tree.leaves(want)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=str(path))
    assert a.sharding.is_equivalent_to(sh, a.ndim), path
    split = model if "model" in sh.spec else 1
    for s in a.addressable_shards:  # no device holds more than its block
      assert s.data.nbytes == a.nbytes // split, path
  per_dev = decoder_mesh.bytes_per_device(got)
  total = sum(x.nbytes for x in jax.tree.leaves(whole))
  replicated = sum(x.nbytes for x, sh in zip(jax.tree.leaves(whole), jax.tree.leaves(want))
                   if "model" not in sh.spec)
  assert max(per_dev.values()) == (total - replicated) // model + replicated
  assert max(per_dev.values()) < total / 2


def test_sharded_gguf_load_equals_whole_smollm2():
  mesh = make_mesh({"data": 1, "model": 8})
  path = gguf_file.smollm2_path()
  cfg, whole, _ = gguf_file.load_gguf(path)
  _, got, tok = gguf_file.load_gguf(path, mesh=mesh)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(whole)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  emb = got["embed"]  # vocab 49152 over model=8; 9 heads / 3 KV heads stay replicated
  assert {s.data.shape for s in emb.addressable_shards} == {(49152 // 8, 576)}
  assert {s.data.shape for s in got["layers"]["w_up"].addressable_shards} == {(30, 576, 192)}
  assert got["layers"]["wq"].sharding.is_fully_replicated
  assert tok.vocab_size == 49152


def _fake_hub_cache(root, repo, src):
  base = os.path.join(root, "models--" + repo.replace("/", "--"))
  snap = os.path.join(base, "snapshots", "0123abcd")
  os.makedirs(snap)
  os.makedirs(os.path.join(base, "refs"))
  with open(os.path.join(base, "refs", "main"), "w") as f:
    f.write("0123abcd")
  for name in os.listdir(src):
    os.symlink(os.path.join(src, name), os.path.join(snap, name))


def test_hub_id_resolves_from_local_cache_and_errors_in_one_line(ckpt, tmp_path, monkeypatch):
  monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
  _fake_hub_cache(str(tmp_path), "someorg/tiny-qwen", ckpt)
  cfg, params, _ = load_model("someorg/tiny-qwen")
  _, whole, _ = load_hf(ckpt)
  np.testing.assert_array_equal(np.asarray(params["layers"]["wq"]),
                                np.asarray(whole["layers"]["wq"]))
  with pytest.raises(AssetMissingError) as e:
    load_model("someorg/not-cached")
  msg = str(e.value)
  assert "\n" not in msg and str(tmp_path) in msg and "someorg/not-cached" in msg


def test_gguf_rope_scaling_and_rope_freqs_are_refused():
  meta = {"general.architecture": "llama"}
  cfg = CFG
  assert gguf_file.check_rope(meta, ["token_embd.weight"], cfg) is cfg
  with pytest.raises(ConfigError, match="rope_freqs"):
    gguf_file.check_rope(meta, ["rope_freqs.weight"], cfg)
  with pytest.raises(ConfigError, match="scaling"):
    gguf_file.check_rope({**meta, "llama.rope.scaling.type": "yarn",
                          "llama.rope.scaling.factor": 4.0}, [], cfg)
