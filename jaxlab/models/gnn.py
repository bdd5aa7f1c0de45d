"""Graph networks over jraph ``GraphsTuple`` (the only module touching jraph).

Batches are padded to a few bucketed sizes (`batch_graphs`) so a jitted model
compiles a handful of times, not once per batch. ``globals["mask"]`` marks real
graphs; padding nodes belong to masked graphs and are excluded from batch
statistics and readouts, so padding never changes a real graph's output.

References:
  Shi et al., "Masked Label Prediction: Unified Message Passing Model for
  Semi-Supervised Classification" (TransformerConv), IJCAI 2021; semantics of
  PyG ``TransformerConv`` (heads, ``concat=False``, ``beta=True``).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np

GraphsTuple = jraph.GraphsTuple


def bucket(x: int, minimum: int = 16) -> int:
  """Rounds ``x`` up to a multiple of next_pow2(x)/4: <= 4 shapes per octave."""
  x = max(int(x), minimum)
  step = max(minimum, (1 << (x - 1).bit_length()) // 4)
  return -(-x // step) * step


def batch_graphs(
  nodes: np.ndarray,
  n_node: np.ndarray,
  edges: np.ndarray,
  n_edge: np.ndarray,
  *,
  pad: bool = True,
  n_graph: int | None = None,
) -> GraphsTuple:
  """Concatenates per-graph padded arrays into one (padded) ``GraphsTuple``.

  Args:
    nodes: [B, V, F] node features, rows beyond ``n_node`` ignored.
    n_node: [B] int nodes per graph.
    edges: [B, E, 2] int (sender, receiver) local indices.
    n_edge: [B] int edges per graph.
    pad: pad nodes/edges to `bucket` sizes and graphs to ``n_graph`` (default
      B + 1), adding masked padding graphs.

  Returns:
    GraphsTuple with ``globals = {"mask": bool[G]}``.
  """
  b = len(n_node)
  node_rows = np.arange(nodes.shape[1])[None, :] < n_node[:, None]
  edge_rows = np.arange(edges.shape[1])[None, :] < n_edge[:, None]
  offsets = np.concatenate([[0], np.cumsum(n_node)[:-1]])
  e = (edges + offsets[:, None, None])[edge_rows]
  graph = GraphsTuple(
    nodes=nodes[node_rows].astype(np.float32),
    edges=None,
    senders=e[:, 0].astype(np.int32),
    receivers=e[:, 1].astype(np.int32),
    n_node=np.asarray(n_node, np.int32),
    n_edge=np.asarray(n_edge, np.int32),
    globals={"mask": np.ones(b, bool)},
  )
  if not pad:
    return graph
  n_graph = b + 1 if n_graph is None else n_graph
  return jraph.pad_with_graphs(
    graph, bucket(int(n_node.sum()) + 1), bucket(int(n_edge.sum()) + 1), n_graph
  )


def node_mask(graph: GraphsTuple) -> jax.Array:
  """[total nodes] bool: the node belongs to a real (unmasked) graph."""
  graph_idx = jnp.repeat(
    jnp.arange(graph.n_node.shape[0]), graph.n_node, total_repeat_length=graph.nodes.shape[0]
  )
  return graph.globals["mask"][graph_idx]


def graph_index(graph: GraphsTuple) -> jax.Array:
  """[total nodes] int graph id of each node."""
  return jnp.repeat(
    jnp.arange(graph.n_node.shape[0]), graph.n_node, total_repeat_length=graph.nodes.shape[0]
  )


def masked_max_readout(x: jax.Array, graph: GraphsTuple) -> jax.Array:
  """[nodes, h] -> [graphs, h] max over each graph's nodes (0 for masked graphs)."""
  pooled = jraph.segment_max(x, graph_index(graph), num_segments=graph.n_node.shape[0])
  return jnp.where(graph.globals["mask"][:, None], pooled, 0.0)


class TransformerConv(nn.Module):
  """Graph transformer convolution (PyG ``TransformerConv``, ``concat=False``).

  Per head (width = ``features``): q_i = W_q x_i, k_j = W_k x_j, v_j = W_v x_j
  (all with bias); alpha_ij = softmax_j over in-neighbours of q_i k_j / sqrt(h);
  m_i = mean over heads of sum_j alpha_ij v_j; r_i = W_skip x_i; with ``beta``,
  b_i = sigmoid(w [m_i, r_i, m_i - r_i]) (no bias) and out = b r + (1 - b) m,
  else out = m + r.

  Attributes:
    features: output width h.
    heads: number of attention heads (averaged).
    beta: use the gated skip connection.
  """

  features: int
  heads: int = 4
  beta: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, senders: jax.Array, receivers: jax.Array) -> jax.Array:
    """x: [nodes, f]; senders, receivers: [edges] -> [nodes, features]."""
    h, heads, n = self.features, self.heads, x.shape[0]
    proj = lambda name: nn.Dense(heads * h, name=name)(x).reshape(n, heads, h)
    q, k, v = proj("query"), proj("key"), proj("value")
    logits = jnp.sum(q[receivers] * k[senders], -1) / math.sqrt(h)  # [edges, heads]
    alpha = jraph.segment_softmax(logits, receivers, num_segments=n)
    msg = jax.ops.segment_sum(alpha[..., None] * v[senders], receivers, num_segments=n)
    m = msg.mean(axis=1)
    r = nn.Dense(h, name="skip")(x)
    if not self.beta:
      return m + r
    gate = nn.sigmoid(nn.Dense(1, use_bias=False, name="beta")(jnp.concatenate([m, r, m - r], -1)))
    return gate * r + (1 - gate) * m


class MaskedBatchNorm(nn.Module):
  """BatchNorm over the real rows only (PyTorch momentum 0.1, eps 1e-5)."""

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, train: bool) -> jax.Array:
    bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
    return bn(x, use_running_average=not train, mask=mask[:, None])


class GraphTransformerRegressor(nn.Module):
  """Embedding, (num_layers + 1) x [TransformerConv, FFN], max readout, head.

  Embedding Dense -> BN -> GELU; each block TransformerConv then
  Dense(4h) -> BN -> GELU -> Dense(h), no residual; max over real nodes;
  Dense(1). Returns [graphs] (0 for masked graphs).
  """

  hidden: int = 256
  num_layers: int = 4
  heads: int = 4
  beta: bool = True

  @nn.compact
  def __call__(self, graph: GraphsTuple, train: bool = False) -> jax.Array:
    mask = node_mask(graph)
    x = nn.Dense(self.hidden)(graph.nodes)
    x = nn.gelu(MaskedBatchNorm()(x, mask, train))
    for _ in range(self.num_layers + 1):
      x = TransformerConv(self.hidden, self.heads, self.beta)(x, graph.senders, graph.receivers)
      y = nn.Dense(4 * self.hidden)(x)
      y = nn.gelu(MaskedBatchNorm()(y, mask, train))
      x = nn.Dense(self.hidden)(y)
    pooled = masked_max_readout(x, graph)
    return jnp.where(graph.globals["mask"], nn.Dense(1)(pooled)[:, 0], 0.0)
