"""Loads a decoder checkpoint into shards and generates greedily on a (data=2, model=4) mesh.

Run as one process with 8 CPU devices, or as one of two processes with 4 CPU devices each
joined by `jax.distributed.initialize` (gloo). Prints the tokens as JSON.
Usage: sharding_worker.py NUM_PROCESSES PROCESS_ID PORT LOCAL_DEVICES CHECKPOINT_DIR
"""

import json
import sys

import jax

nproc, pid, port, local = (int(a) for a in sys.argv[1:5])
ckpt = sys.argv[5]
jax.config.update("jax_num_cpu_devices", local)
if nproc > 1:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)

import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from jaxlab.core.sharding import make_mesh  # noqa: E402
from jaxlab.models import decoder_mesh  # noqa: E402
from jaxlab.models.generate import generate  # noqa: E402
from jaxlab.models.loaders import load_hf  # noqa: E402

mesh = make_mesh({"data": 2, "model": 4})
cfg, params, _ = load_hf(ckpt, mesh=mesh)  # every process reads only its devices' blocks
local_bytes = sum(decoder_mesh.bytes_per_device(params).values())
rng = np.random.default_rng(3)
ids = rng.integers(6, cfg.vocab_size, (4, 7)).astype(np.int32)
mask = np.ones_like(ids)
mask[1, :3] = 0
mask[3, :5] = 0
ids = ids * mask
sids, smask = decoder_mesh.shard_batch(mesh, ids, mask)  # same global arrays in every process
with jax.set_mesh(mesh):
  gen = generate(cfg, params, sids, smask, max_new_tokens=5, stop_ids=())
tokens = multihost_utils.process_allgather(gen.tokens, tiled=True)
print(json.dumps({"devices": jax.device_count(), "local_devices": jax.local_device_count(),
                  "tokens": np.asarray(tokens).tolist(), "local_param_bytes": local_bytes}))
