"""Masked evaluation of the global model on padded test sets."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.federated import schedule
from jaxlab.federated.types import Model


def pad_eval(x: np.ndarray, y: np.ndarray, batch_size: int):
  """Pads (x, y) to a multiple of ``batch_size``; returns (x, y, mask) as device arrays."""
  pad = -len(x) % batch_size
  mask = np.concatenate([np.ones(len(x), bool), np.zeros(pad, bool)])
  x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
  y = np.concatenate([y, np.zeros(pad, y.dtype)])
  return jnp.asarray(x), jnp.asarray(y, jnp.int32), jnp.asarray(mask)


def make_evaluate(model: Model, batch_size: int, preprocess=schedule.default_preprocess):
  """A jitted ``evaluate(params, model_state, x, y, mask) -> {accuracy, loss}``.

  ``x``/``y``/``mask`` come from ``pad_eval``; plain top-1 = sum(mask·correct)/sum(mask).
  """
  def evaluate(params, model_state, x, y, mask):
    nb = x.shape[0] // batch_size
    def one(b):
      xb, yb, mb = (a.reshape(nb, batch_size, *a.shape[1:])[b] for a in (x, y, mask))
      logits, _ = model.apply(params, model_state, preprocess(xb), False)
      ce = -jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], 1)[:, 0]
      return jnp.sum((logits.argmax(-1) == yb) * mb), jnp.sum(ce * mb), logits.argmax(-1)
    correct, loss, pred = jax.lax.map(one, jnp.arange(nb))
    total = jnp.maximum(mask.sum(), 1)
    return {"accuracy": correct.sum() / total, "loss": loss.sum() / total,
            "pred": pred.reshape(-1)}
  return jax.jit(evaluate)


def per_client_accuracy(pred: np.ndarray, y: np.ndarray, idx: np.ndarray, n: np.ndarray
                        ) -> np.ndarray:
  """Accuracy f32[K] of predictions ``pred[N]`` on each client's own samples."""
  correct = (np.asarray(pred)[: len(y)] == np.asarray(y)).astype(np.float64)
  valid = np.arange(idx.shape[1])[None] < np.asarray(n)[:, None]
  return (correct[np.asarray(idx)] * valid).sum(1) / np.maximum(n, 1)


def make_evaluate_server(logits_fn, batch_size: int, preprocess=schedule.default_preprocess):
  """Like ``make_evaluate`` for any sub-model of the server state.

  Args:
    logits_fn: ``(server: ServerState, x [B, ...]) -> logits [B, C]``, e.g. a plug-in's
      ``eval_logits`` (a second model, a model built from owned params).

  Returns:
    A jitted ``evaluate(server, x, y, mask) -> {accuracy, loss, pred}``.
  """
  def evaluate(server, x, y, mask):
    model = Model(lambda key: ((), ()), lambda p, s, xb, train: (logits_fn(server, xb), s))
    return make_evaluate(model, batch_size, preprocess).__wrapped__((), (), x, y, mask)
  return jax.jit(evaluate)
