"""GNN tests: segment TransformerConv == dense reference; padding is invisible."""

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.models import gnn


def random_graphs(rng, b=5, v=7, f=6):
  n_node = rng.integers(2, v + 1, size=b)
  nodes = rng.normal(size=(b, v, f)).astype(np.float32)
  edges = np.zeros((b, 2 * v * v, 2), np.int32)
  n_edge = np.zeros(b, np.int32)
  for g in range(b):
    pairs = {(i, (i + 1) % n_node[g]) for i in range(n_node[g])}  # every node has an in-edge
    pairs |= {tuple(rng.integers(0, n_node[g], 2)) for _ in range(n_node[g])}
    pairs |= {(j, i) for i, j in pairs}
    pairs = sorted(pairs)
    edges[g, : len(pairs)] = pairs
    n_edge[g] = len(pairs)
  return nodes, n_node, edges, n_edge


def dense_transformer_conv(p, x, adj, heads, h):
  """Dense per-graph reference: scores [heads, V, V] masked by adj[receiver, sender]."""
  q = (x @ p["query"]["kernel"] + p["query"]["bias"]).reshape(-1, heads, h)
  k = (x @ p["key"]["kernel"] + p["key"]["bias"]).reshape(-1, heads, h)
  v = (x @ p["value"]["kernel"] + p["value"]["bias"]).reshape(-1, heads, h)
  s = np.einsum("ihd,jhd->hij", q, k) / math.sqrt(h)
  s = np.where(adj[None], s, -np.inf)
  a = np.exp(s - s.max(-1, keepdims=True))
  a = np.where(adj[None], a, 0)
  a = a / a.sum(-1, keepdims=True)
  m = np.einsum("hij,jhd->ihd", a, v).mean(1)
  r = x @ p["skip"]["kernel"] + p["skip"]["bias"]
  beta = 1 / (1 + np.exp(-(np.concatenate([m, r, m - r], -1) @ p["beta"]["kernel"])))
  return beta * r + (1 - beta) * m


def test_transformer_conv_equals_dense_reference():
  rng = np.random.default_rng(0)
  nodes, n_node, edges, n_edge = random_graphs(rng)
  g = gnn.batch_graphs(nodes, n_node, edges, n_edge)
  conv = gnn.TransformerConv(features=4, heads=3)
  params = conv.init(jax.random.key(0), g.nodes, g.senders, g.receivers)["params"]
  out = np.asarray(conv.apply({"params": params}, g.nodes, g.senders, g.receivers))
  p = jax.tree.map(np.asarray, params)
  start = 0
  for b in range(len(n_node)):
    adj = np.zeros((n_node[b], n_node[b]), bool)
    for s, r in edges[b, : n_edge[b]]:
      adj[r, s] = True
    want = dense_transformer_conv(p, nodes[b, : n_node[b]], adj, 3, 4)
    np.testing.assert_allclose(out[start : start + n_node[b]], want, rtol=1e-4, atol=1e-5)
    start += n_node[b]


def test_padded_batches_give_same_predictions_as_unpadded():
  rng = np.random.default_rng(1)
  arrays = random_graphs(rng, b=6)
  plain = gnn.batch_graphs(*arrays, pad=False)
  padded = gnn.batch_graphs(*arrays, n_graph=9)
  assert padded.nodes.shape[0] > plain.nodes.shape[0]
  model = gnn.GraphTransformerRegressor(hidden=8, num_layers=1, heads=2)
  variables = model.init(jax.random.key(0), plain)
  # Eval mode (running statistics).
  a = model.apply(variables, plain)
  b = model.apply(variables, padded)
  np.testing.assert_allclose(b[:6], a, rtol=1e-5, atol=1e-5)
  assert np.all(np.asarray(b[6:]) == 0)
  # Train mode: masked batch statistics ignore padding nodes.
  a, sa = model.apply(variables, plain, train=True, mutable=["batch_stats"])
  b, sb = model.apply(variables, padded, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(b[:6], a, rtol=1e-4, atol=1e-5)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6), sa, sb)


def test_buckets_are_few_and_cover():
  sizes = {gnn.bucket(x) for x in range(400, 1300)}
  assert len(sizes) <= 12
  assert all(gnn.bucket(x) >= x for x in range(1, 3000))


def test_masked_max_readout():
  rng = np.random.default_rng(2)
  arrays = random_graphs(rng, b=3)
  g = gnn.batch_graphs(*arrays)
  x = jnp.asarray(rng.normal(size=(g.nodes.shape[0], 2)), jnp.float32)
  out = np.asarray(gnn.masked_max_readout(x, g))
  start = 0
  for b, n in enumerate(arrays[1]):
    np.testing.assert_allclose(out[b], np.asarray(x[start : start + n]).max(0))
    start += n
  assert np.all(out[3:] == 0)
