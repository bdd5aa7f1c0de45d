"""KV-cache generation equals full recomputation; sampling, stop ids, CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder
from jaxlab.models.generate import cli_main, generate, sample_logits

import decoder_helpers as dit  # tests/models/conftest.py puts it on sys.path

N = 6


def _recompute_greedy(cfg, params, ids, mask, n):
  """Greedy decoding by full forwards (one fixed shape: right-padded by masked slots)."""
  b, t = ids.shape
  ids = np.concatenate([np.asarray(ids), np.zeros((b, n), np.int32)], 1)
  mask = np.concatenate([np.asarray(mask), np.zeros((b, n), np.int32)], 1)
  toks, steps = [], []
  for i in range(n):
    logits, _ = decoder.jit_apply(cfg, params, jnp.asarray(ids), jnp.asarray(mask))
    last = np.asarray(logits[:, t - 1 + i])
    nxt = last.argmax(-1).astype(np.int32)
    steps.append(last)
    toks.append(nxt)
    ids[:, t + i], mask[:, t + i] = nxt, 1
  return np.stack(toks, 1), steps


@pytest.mark.parametrize("cfg", [dit.CFG, dit.GPT2], ids=["llama", "gpt2"])
def test_cached_greedy_equals_full_recompute_and_padding(cfg):
  params, (ids, mask) = dit.random_params(cfg), dit.batch()
  gen = generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=())
  want, _ = _recompute_greedy(cfg, params, ids, mask, N)
  np.testing.assert_array_equal(np.asarray(gen.tokens), want)
  assert gen.tokens.shape == (3, N) and np.all(np.asarray(gen.lengths) == N)
  alone = generate(cfg, params, ids[2:, 5:], mask[2:, 5:], max_new_tokens=N, stop_ids=())
  np.testing.assert_array_equal(np.asarray(alone.tokens[0]), np.asarray(gen.tokens[2]))


def test_decode_step_logits_match_recompute():
  cfg, params, (ids, mask) = dit.CFG, dit.random_params(dit.CFG), dit.batch()
  toks, steps = _recompute_greedy(cfg, params, ids, mask, 3)
  cache = decoder.init_cache(cfg, 3, ids.shape[1] + 3)
  logits, _, cache = decoder.jit_extend(cfg, params, ids, mask, cache)
  np.testing.assert_allclose(logits[:, -1], steps[0], rtol=1e-5, atol=1e-5)
  for i in range(1, 3):
    logits, _, cache = decoder.jit_extend(cfg, params, jnp.asarray(toks[:, i - 1:i]),
                                          jnp.ones((3, 1), jnp.int32), cache)
    np.testing.assert_allclose(logits[:, 0], steps[i], rtol=1e-5, atol=1e-5)


def test_stop_ids_sampling_and_head_mask_in_generation():
  cfg, params, (ids, mask) = dit.CFG, dit.random_params(dit.CFG), dit.batch()
  greedy = np.asarray(generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=()).tokens)
  stop = int(greedy[0, 2])
  gen = generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=(stop,))
  row = np.asarray(gen.tokens[0])
  first = int(np.argmax(greedy[0] == stop))
  assert int(gen.lengths[0]) == first + 1 and bool(gen.done[0])
  np.testing.assert_array_equal(row[:first + 1], greedy[0, :first + 1])
  assert np.all(row[first + 1:] == (cfg.pad_id or 0))
  key = jax.random.key(3)
  s1 = generate(cfg, params, ids, mask, max_new_tokens=N, key=key, temperature=1.0, stop_ids=())
  s2 = generate(cfg, params, ids, mask, max_new_tokens=N, key=key, temperature=1.0, stop_ids=())
  np.testing.assert_array_equal(np.asarray(s1.tokens), np.asarray(s2.tokens))
  nucleus = generate(cfg, params, ids, mask, max_new_tokens=N, key=key, temperature=1.0,
                     top_p=1e-6, stop_ids=())
  np.testing.assert_array_equal(np.asarray(nucleus.tokens), greedy)
  ones = decoder.Intervention(z_scale=jnp.ones((cfg.n_layers, cfg.n_heads)))
  masked = generate(cfg, params, ids, mask, max_new_tokens=N, stop_ids=(), intervene=ones)
  np.testing.assert_array_equal(np.asarray(masked.tokens), greedy)


def test_top_p_keeps_only_the_nucleus():
  logits = jnp.log(jnp.array([[0.5, 0.3, 0.15, 0.05]]))
  keys = jax.random.split(jax.random.key(0), 400)
  draws = np.asarray(jax.vmap(lambda k: sample_logits(logits, k, jnp.float32(1.0),
                                                      jnp.float32(0.7)))(keys))[:, 0]
  assert set(draws.tolist()) == {0, 1}


def _write_word_tokenizer(path, vocab_size):
  from tokenizers import Tokenizer, models, pre_tokenizers

  vocab = {"<eos>": 0, **{f"w{i}": i for i in range(1, vocab_size)}}
  tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<eos>"))
  tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tk.save(str(path / "tokenizer.json"))
  with open(path / "tokenizer_config.json", "w") as f:
    json.dump({"eos_token": "<eos>", "pad_token": "<eos>"}, f)


def test_cli_generates_from_an_hf_directory(tmp_path, capsys):
  pytest.importorskip("torch")
  import decoder_hf_fixtures as fx

  model = fx.build("llama_gqa")
  model.save_pretrained(tmp_path)
  _write_word_tokenizer(tmp_path, 97)
  rc = cli_main(["--model", str(tmp_path), "--prompt", "w5 w6 w7", "--prompt", "w9",
                 "--max-new-tokens", "4", "--no-chat"])
  out = capsys.readouterr().out
  assert rc == 0 and out.count("###") == 2
  assert cli_main(["--model", str(tmp_path / "nope"), "--prompt", "x"]) == 2


def test_cli_generate_reuses_the_persistent_compilation_cache(tmp_path):
  """`jaxlab generate` twice: the second call adds no compiled entries (nothing recompiled)."""
  import os
  import subprocess
  import sys

  from jaxlab.models.loaders import export

  cfg = decoder.DecoderConfig(vocab_size=97, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                              d_ff=48, max_positions=64, tie_embeddings=False)
  from safetensors.numpy import save_file

  model = tmp_path / "model"
  model.mkdir()
  save_file(export.hf_llama_tensors(cfg, decoder.init_params(cfg, jax.random.key(0))),
            str(model / "model.safetensors"))
  conf = dict(model_type="llama", vocab_size=97, hidden_size=32, intermediate_size=48,
              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
              max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False)
  (model / "config.json").write_text(json.dumps(conf))
  _write_word_tokenizer(model, 97)
  cache = tmp_path / "cache"
  env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
  env["JAXLAB_COMPILE_CACHE"] = str(cache)  # read only by jaxlab's own cache set-up
  cmd = [sys.executable, "-c", "import sys; from jaxlab.cli import main; sys.exit(main())",
         "generate", "--model", str(model), "--prompt", "w5 w6", "--max-new-tokens", "3",
         "--no-chat"]
  counts, outs = [], []
  for _ in range(2):
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    outs.append(run.stdout)
    counts.append(sum(len(files) for _, _, files in os.walk(cache)))
  assert counts[0] > 0 and counts[1] == counts[0]
  assert outs[0] == outs[1]
  env["JAXLAB_COMPILE_CACHE"] = str(tmp_path / "off")  # the switch: nothing written there
  run = subprocess.run([*cmd, "--no-compile-cache"], env=env, capture_output=True, text=True,
                       timeout=300)
  assert run.returncode == 0 and run.stdout == outs[0], run.stderr[-2000:]
  assert not (tmp_path / "off").exists()
