"""Trains a data-parallel MLP for a few steps and prints the losses as JSON.

Run as one process with 8 CPU devices, or as one of two processes with 4 CPU
devices each joined by `jax.distributed.initialize` (gloo collectives).
Usage: distributed_worker.py NUM_PROCESSES PROCESS_ID PORT LOCAL_DEVICES
"""

import json
import sys

import jax

nproc, pid, port, local = (int(a) for a in sys.argv[1:5])
jax.config.update("jax_num_cpu_devices", local)
if nproc > 1:
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxlab.core import axes, sharding, train  # noqa: E402
from jaxlab.core.state import TrainState  # noqa: E402
from jaxlab.models import MLP  # noqa: E402

model = MLP(hidden=(32,), num_classes=4)
tx = optax.adam(1e-2)


def loss_fn(params, model_state, batch, key):
  logits = model.apply({"params": params}, batch["x"])
  return optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean(), (
    model_state, {})


mesh = sharding.make_mesh({axes.DATA: -1})
repl = sharding.replicated(mesh)
init = lambda k: TrainState.create(model.init(k, jnp.zeros((1, 6)))["params"], tx)  # noqa: E731
state = sharding.init_on_mesh(init, lambda a: jax.tree.map(lambda _: repl, a), jax.random.key(0))
state_sh = jax.tree.map(lambda _: repl, state)
batch_sh = {"x": sharding.named(mesh, axes.DATA), "y": sharding.named(mesh, axes.DATA)}
step = train.jit_step(train.make_step(loss_fn, tx), state_sh, batch_sh)
losses = []
for i in range(5):
  r = np.random.default_rng(i)
  full = {"x": r.normal(size=(64, 6)).astype(np.float32), "y": r.integers(0, 4, 64)}
  rows = slice(pid * 64 // nproc, (pid + 1) * 64 // nproc)  # this host's rows
  state, m = step(state, sharding.shard_batch({k: v[rows] for k, v in full.items()}, mesh),
                  jax.random.key(1))
  losses.append(float(m["loss"]))
print(json.dumps({"devices": jax.device_count(), "losses": losses}))
