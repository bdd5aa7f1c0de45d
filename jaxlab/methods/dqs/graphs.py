"""Setups -> circuit DAG graphs (nodes START, sources, devices, END).

Node features are the reference's type one-hot (16 entries) followed by a
path multi-hot (N entries); edges follow the wires: for each node (END
included) and each path it touches, an undirected edge to the last node on
that path. Graphs are stored per setup as padded numpy arrays; batching and
padding into jraph ``GraphsTuple`` lives in `jaxlab.models.gnn`.
"""

from typing import NamedTuple

import numpy as np

from jaxlab.methods.dqs import config as C
from jaxlab.methods.dqs.setups import Setups

_TYPE_INDEX = {t: 1 + i for i, t in enumerate(C.DEVICE_DICT)}
START, END = 0, C.NUM_TYPES - 1


class GraphArrays(NamedTuple):
  """Per-setup graphs, padded to the largest possible size.

  Attributes:
    nodes: [B, V, F] float32 node features (zeros beyond n_node).
    n_node: [B] int32.
    edges: [B, E, 2] int32 (sender, receiver), local node indices.
    n_edge: [B] int32 (both directions counted).
  """

  nodes: np.ndarray
  n_node: np.ndarray
  edges: np.ndarray
  n_edge: np.ndarray

  def take(self, idx) -> "GraphArrays":
    return GraphArrays(*(x[idx] for x in self))


def feature_size(n_photons: int, angle_features: bool = False) -> int:
  return C.NUM_TYPES + n_photons + (2 if angle_features else 0)


def _node_list(sources, devices, angles, n):
  """[(type index, paths, theta)] for START, sources, devices, END."""
  nodes = [(START, tuple(range(n)), 0.0)]
  for i, t in enumerate(sources):
    nodes.append((_TYPE_INDEX[(int(t), 0)], (2 * i, 2 * i + 1), 0.0))
  for (d, p1, p2, k), th in zip(devices, angles):
    if d > 0:
      paths = (int(p1), int(p2)) if p1 != p2 else (int(p1),)
      nodes.append((_TYPE_INDEX[(int(d), int(k))], paths, float(th)))
  nodes.append((END, tuple(range(n)), 0.0))
  return nodes


def _edge_list(nodes, n):
  last = [0] * n
  edges = set()
  for i, (_, paths, _) in enumerate(nodes[1:], start=1):
    for p in paths:
      edges.add((last[p], i))
      edges.add((i, last[p]))
      last[p] = i
  return sorted(edges)


def build_graphs(
  setups: Setups, cfg: C.SimConfig, angle_features: bool | None = None
) -> GraphArrays:
  """Builds the graph of every setup.

  Args:
    setups: a batch of B setups.
    cfg: the simulator config (N, max_devices).
    angle_features: append (cos 2 theta, sin 2 theta) to device nodes
      (reconstructed option [R]; default: on iff angle_mode is continuous).

  Returns:
    GraphArrays with V = N/2 + max_devices + 2 and E = 4 (V - 1) + 2 N slots.
  """
  n = cfg.n_photons
  if angle_features is None:
    angle_features = cfg.angle_mode == "continuous"
  v_max = cfg.n_sources + cfg.max_devices + 2
  e_max = 4 * (v_max - 1) + 2 * n
  f = feature_size(n, angle_features)
  b = len(setups)
  nodes = np.zeros((b, v_max, f), np.float32)
  edges = np.zeros((b, e_max, 2), np.int32)
  n_node = np.zeros(b, np.int32)
  n_edge = np.zeros(b, np.int32)
  src, dev, ang = (np.asarray(x) for x in setups)
  for g in range(b):
    nl = _node_list(src[g], dev[g], ang[g], n)
    el = _edge_list(nl, n)
    for i, (t, paths, th) in enumerate(nl):
      nodes[g, i, t] = 1.0
      nodes[g, i, C.NUM_TYPES + np.asarray(paths)] = 1.0
      if angle_features and t not in (START, END):
        nodes[g, i, -2:] = np.cos(2 * th), np.sin(2 * th)
    n_node[g], n_edge[g] = len(nl), len(el)
    edges[g, : len(el)] = el
  return GraphArrays(nodes, n_node, edges, n_edge)
