"""Tiny models and data shared by the federated tests."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxlab import federated as fl


class TinyNet(nn.Module):
  """Flatten -> Dense(8) -> BatchNorm -> relu -> Dense(3)."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = x.reshape(x.shape[0], -1)
    x = nn.Dense(8)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
    return nn.Dense(3)(nn.relu(x))


def tiny_data(sizes=(3, 7, 12, 20), seed=0):
  """Synthetic uint8 4x4 images, 3 classes, clients of the given sizes."""
  rs = np.random.RandomState(seed)
  n = sum(sizes)
  x = rs.randint(0, 256, (n, 4, 4)).astype(np.uint8)
  y = rs.randint(0, 3, n)
  parts = np.split(rs.permutation(n), np.cumsum(sizes)[:-1])
  return x, y, parts


def model():
  return fl.Model.from_linen(TinyNet(), jnp.zeros((2, 4, 4, 1)))


def make(alg_name="fedavg", sizes=(3, 7, 12, 20), batch=4, epochs=2, mesh=None, groups=1,
         momentum=0.5, persist_opt=False, chunk=None, grouping="equal", bucket="pow2",
         client_table=None, placement="device", **kw):
  x, y, parts = tiny_data(sizes)
  data = fl.make_fed_data(x, y, parts, placement=placement)
  tx = fl.client_sgd(learning_rate=0.05, momentum=momentum, weight_decay=1e-3)
  alg = fl.algorithms.ALGORITHMS[alg_name](model(), tx, num_clients=len(sizes),
                                           persist_opt_state=persist_opt, **kw)
  cfg = fl.EngineConfig(batch_size=batch, local_epochs=epochs, groups=groups, client_chunk=chunk,
                        grouping=grouping, step_bucket=bucket)
  return fl.Engine(alg, cfg, data, mesh=mesh, client_table=client_table)


# K = 10 clients (does not divide 8 devices: a sharded table pads to 16 rows) and 3 rounds of ids.
SHARD_SIZES = (3, 7, 12, 20, 5, 9, 2, 14, 6, 11)
SHARD_IDS = [np.arange(9), np.array([3, 1, 0, 9, 8, 7, 2, 5]), np.array([4, 2, 6, 8, 9, 1, 0, 3])]


def run_rounds(eng, ids_list=tuple(SHARD_IDS)):
  """``eng.init(key 0)`` then one ``run_round`` (key 1) per id array; the last (sim, metrics)."""
  sim = eng.init(jax.random.key(0))
  key = jax.random.key(1)
  for ids in ids_list:
    sim, m = eng.run_round(sim, ids, key)
  return sim, m
