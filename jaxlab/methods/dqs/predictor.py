"""Setup -> QFI predictors: the reference GNN (``GNN_QFM``) and its MLP baseline.

Both read the graphs of `graphs.build_graphs`: the GNN as a padded jraph
``GraphsTuple``, the MLP as the flattened zero-padded node sequence. Batches
are dicts ``{"graph" | "x": inputs, "y": [G] targets, "mask": [G] bool}``.
"""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.stats

from jaxlab.core.errors import ConfigError
from jaxlab.methods.dqs.graphs import GraphArrays
from jaxlab.models import gnn

MODELS = ("gnn", "mlp")
TARGETS = ("raw", "log1p")
ZERO_TOL = 1e-6  # labels at or below this count as QFI = 0


@dataclasses.dataclass(frozen=True, kw_only=True)
class PredictorConfig:
  """Model and training settings (defaults = reference ``train.py``).

  Attributes:
    model: "gnn" (TransformerConv GNN) or "mlp" (the reference's baseline).
    hidden: GNN width h (reference 256).
    num_layers: L; the GNN has L + 1 conv blocks (reference 4).
    heads: attention heads, averaged (reference 4).
    mlp_hidden: MLP baseline width (reference 128).
    lr: Adam learning rate (reference 1e-4).
    weight_decay: coupled L2 added to every gradient, PyTorch Adam style.
    batch_size: training batch (reference 64).
    eval_batch_size: evaluation batch (the reference uses 32; any size gives
      the same eval-mode predictions).
    epochs: training epochs (reference 200).
    eval_every: evaluate/select every this many epochs (reference 5).
    init_best: selection threshold before any evaluation (reference 15).
    seed: parameter init and shuffling seed.
    target: what the network regresses [R]: "raw" (the reference: MSE on
      QFI) or "log1p" (MSE on log(1 + QFI / target_scale)). Predictions are
      always mapped back to QFI units.
    target_scale: QFI is divided by this before the transform (N^2 gives
      QFI / HL, the reference uses 1).
    zero_head: [R] GNN only: a second output, a logit for QFI > 0 trained
      with binary cross-entropy; the regression output is trained on the
      non-zero labels only and the prediction is sigmoid(logit) * QFI_hat.
  """

  model: str = "gnn"
  hidden: int = 256
  num_layers: int = 4
  heads: int = 4
  mlp_hidden: int = 128
  lr: float = 1e-4
  weight_decay: float = 1e-5
  batch_size: int = 64
  eval_batch_size: int = 256
  epochs: int = 200
  eval_every: int = 5
  init_best: float = 15.0
  seed: int = 0
  target: str = "raw"
  target_scale: float = 1.0
  zero_head: bool = False

  def __post_init__(self):
    if self.model not in MODELS:
      raise ConfigError(f"model={self.model!r} is unknown; choose one of {MODELS}")
    if self.target not in TARGETS:
      raise ConfigError(f"target={self.target!r} is unknown; choose one of {TARGETS}")
    if not self.target_scale > 0:
      raise ConfigError(f"target_scale={self.target_scale} must be > 0 (e.g. N^2)")
    if self.zero_head and self.model != "gnn":
      raise ConfigError("zero_head is a GNN option; set it only with model='gnn'")
    if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
      raise ConfigError("epochs, batch_size and eval_every must be >= 1")


class MLPBaseline(nn.Module):
  """Flattened node sequence -> Dense -> BN -> ReLU -> Dense -> BN -> ReLU -> Dense(1)."""

  hidden: int = 128

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
    """x: [B, V F] flattened padded nodes; mask: [B] real rows -> [B]."""
    for _ in range(2):
      x = nn.Dense(self.hidden)(x)
      x = nn.relu(gnn.MaskedBatchNorm()(x, mask, train))
    return nn.Dense(1)(x)[:, 0]


class ZeroGateGNN(nn.Module):
  """`gnn.GraphTransformerRegressor`'s body with two outputs [G, 2]: (QFI_hat, logit QFI > 0)."""

  hidden: int = 256
  num_layers: int = 4
  heads: int = 4

  @nn.compact
  def __call__(self, graph, train: bool = False) -> jax.Array:
    mask = gnn.node_mask(graph)
    x = nn.gelu(gnn.MaskedBatchNorm()(nn.Dense(self.hidden)(graph.nodes), mask, train))
    for _ in range(self.num_layers + 1):
      x = gnn.TransformerConv(self.hidden, self.heads, True)(x, graph.senders, graph.receivers)
      y = nn.gelu(gnn.MaskedBatchNorm()(nn.Dense(4 * self.hidden)(x), mask, train))
      x = nn.Dense(self.hidden)(y)
    out = nn.Dense(2)(gnn.masked_max_readout(x, graph))
    return jnp.where(graph.globals["mask"][:, None], out, 0.0)


def make_model(cfg: PredictorConfig) -> nn.Module:
  if cfg.model == "gnn" and cfg.zero_head:
    return ZeroGateGNN(cfg.hidden, cfg.num_layers, cfg.heads)
  if cfg.model == "gnn":
    return gnn.GraphTransformerRegressor(cfg.hidden, cfg.num_layers, cfg.heads)
  return MLPBaseline(cfg.mlp_hidden)


def encode(cfg: PredictorConfig, qfi: jax.Array) -> jax.Array:
  """QFI -> the regression target of ``cfg.target``."""
  t = qfi / cfg.target_scale
  return jnp.log1p(t) if cfg.target == "log1p" else t


def decode(cfg: PredictorConfig, out: jax.Array) -> jax.Array:
  """Network output ([G] or [G, 2] with ``zero_head``) -> predicted QFI [G]."""
  reg = out[:, 0] if cfg.zero_head else out
  qfi = (jnp.expm1(reg) if cfg.target == "log1p" else reg) * cfg.target_scale
  return jax.nn.sigmoid(out[:, 1]) * qfi if cfg.zero_head else qfi


def loss(cfg: PredictorConfig, out: jax.Array, qfi: jax.Array, mask: jax.Array) -> jax.Array:
  """Training loss on raw labels ``qfi`` [G]: MSE of the encoded target (+ BCE on QFI > 0)."""
  t = encode(cfg, qfi)
  if not cfg.zero_head:
    return masked_mse(out, t, mask)
  nonzero = qfi > ZERO_TOL
  m = mask.astype(out.dtype)
  bce = optax.sigmoid_binary_cross_entropy(out[:, 1], nonzero.astype(out.dtype))
  return jnp.sum(m * bce) / jnp.maximum(jnp.sum(m), 1.0) + masked_mse(out[:, 0], t, mask & nonzero)


def apply_model(model: nn.Module, variables, batch: dict, train: bool):
  """Predictions [G] (and the new batch_stats when ``train``)."""
  mutable = ["batch_stats"] if train else False
  if isinstance(model, MLPBaseline):
    out = model.apply(variables, batch["x"], batch["mask"], train, mutable=mutable)
  else:
    out = model.apply(variables, batch["graph"], train, mutable=mutable)
  return out


def make_batch(cfg: PredictorConfig, g: GraphArrays, y: np.ndarray, size: int) -> dict:
  """One padded batch of ``len(y) <= size`` setups for ``cfg.model``."""
  b = len(y)
  mask = np.arange(size) < b
  y_pad = np.zeros(size + (cfg.model == "gnn"), np.float32)
  y_pad[:b] = y
  if cfg.model == "gnn":
    graph = gnn.batch_graphs(g.nodes, g.n_node, g.edges, g.n_edge, n_graph=size + 1)
    return {"graph": graph, "y": y_pad, "mask": graph.globals["mask"]}
  x = np.zeros((size, g.nodes.shape[1] * g.nodes.shape[2]), np.float32)
  x[:b] = g.nodes.reshape(b, -1)
  return {"x": x, "y": y_pad, "mask": mask}


def masked_mse(pred: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
  m = mask.astype(pred.dtype)
  return jnp.sum(m * (pred - y) ** 2) / jnp.maximum(jnp.sum(m), 1.0)


def regression_metrics(pred: np.ndarray, y: np.ndarray, tol: float = 1e-6) -> dict[str, float]:
  """MSE, MAE, R^2 and Spearman on all setups and on the non-zero-label subset."""
  out = {}
  for name, sel in (("all", np.ones_like(y, bool)), ("nonzero", y > tol)):
    p, t = pred[sel], y[sel]
    if len(t) < 2:
      continue
    var = np.var(t)
    out[f"{name}/mse"] = float(np.mean((p - t) ** 2))
    out[f"{name}/mae"] = float(np.mean(np.abs(p - t)))
    out[f"{name}/r2"] = float(1 - np.mean((p - t) ** 2) / var) if var > 0 else float("nan")
    out[f"{name}/spearman"] = float(scipy.stats.spearmanr(p, t).statistic)
  return out
