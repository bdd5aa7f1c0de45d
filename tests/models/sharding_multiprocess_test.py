"""Two processes x 4 CPU devices (jax.distributed, gloo): sharded load + greedy generation
equal one process x 8 devices."""

import json
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from jaxlab.models import decoder
from jaxlab.models.loaders import export, synthetic

WORKER = pathlib.Path(__file__).with_name("sharding_worker.py")
CFG = decoder.DecoderConfig(vocab_size=64, d_model=32, n_layers=2, n_heads=8, n_kv_heads=4,
                            d_ff=64, rope_theta=100.0, max_positions=32, tie_embeddings=False)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _last_json(out):
  return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_processes_generate_like_one(tmp_path):
  params = jax.tree.map(lambda x: x * 8.0 if x.ndim >= 3 else x,
                        decoder.init_params(CFG, jax.random.key(0)))
  save_file(export.hf_llama_tensors(CFG, params), str(tmp_path / "model.safetensors"))
  (tmp_path / "config.json").write_text(json.dumps(synthetic.hf_config(CFG)))
  args = lambda n, i, port, local: [sys.executable, str(WORKER), str(n), str(i), str(port),
                                    str(local), str(tmp_path)]
  one = subprocess.run(args(1, 0, 0, 8), capture_output=True, text=True, timeout=400)
  assert one.returncode == 0, one.stderr[-2000:]
  port = _free_port()
  procs = [subprocess.Popen(args(2, i, port, 4), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True) for i in range(2)]
  outs = [p.communicate(timeout=400) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
  ref = _last_json(one.stdout)
  assert ref["devices"] == 8 and len(np.unique(ref["tokens"])) > 3
  for out, _ in outs:
    got = _last_json(out)
    assert got["devices"] == 8 and got["local_devices"] == 4
    np.testing.assert_array_equal(got["tokens"], ref["tokens"])
    # each process holds only its 4 devices' blocks: half of the one-process total
    assert got["local_param_bytes"] * 2 == ref["local_param_bytes"]
