"""Plug-ins: a method's local loss, client state, upload and server state.

``supervised(model)`` is the default: cross-entropy, no extra state. A method
builds its own ``Plugin`` (see docs/federated.md) and passes it to any baseline.
"""

import jax
import optax

from jaxlab.federated.types import Model, Plugin


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy; logits [B, C], integer labels [B]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _none(*_):
  return ()


def supervised(model: Model) -> Plugin:
  """Plain supervised training: loss = CE(model(x), y); reports loss and accuracy."""
  def loss(params, model_state, ext, batch, key):
    del key
    logits, model_state = model.apply(params, model_state, batch["x"], True)
    ce = cross_entropy(logits, batch["y"])
    acc = (logits.argmax(-1) == batch["y"]).mean()
    return ce, (model_state, ext, {"train_acc": acc})

  return Plugin(
    server_init=_none,
    persist_init=_none,
    client_init=lambda server, row, meta, key: (),
    loss=loss,
    client_final=lambda server, carry, meta: ((), ()),
    server_update=lambda server, ups, w, key: (server.ext, {}),
  )
