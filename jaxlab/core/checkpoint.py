"""Orbax checkpoints of a state pytree plus a small JSON side-car.

The JSON holds what is not an array: the data iterator position, the step,
anything an experiment needs to resume exactly.
"""

import pathlib
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxlab.core.errors import CheckpointError


class Checkpointer:
  """A thin wrapper over ``ocp.CheckpointManager``.

  Args:
    directory: where checkpoints live (created if missing).
    max_to_keep: how many recent checkpoints to keep.
  """

  def __init__(self, directory: pathlib.Path | str, max_to_keep: int = 2):
    self.directory = pathlib.Path(directory).absolute()
    self.manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
      item_handlers={
        "state": ocp.StandardCheckpointHandler(),
        "extra": ocp.JsonCheckpointHandler(),
      },
    )

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state: Any, extra: dict[str, Any] | None = None) -> None:
    """Saves ``state`` (arrays) and ``extra`` (JSON) at ``step``, synchronously."""
    self.manager.save(
      int(step),
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        extra=ocp.args.JsonSave(dict(extra or {})),
      ),
      force=True,
    )
    self.manager.wait_until_finished()

  def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict]:
    """Restores into ``abstract_state`` (a state or its ``jax.eval_shape``).

    Raises:
      CheckpointError: nothing to restore, or a leaf's shape/dtype differs.
    """
    step = self.latest_step() if step is None else step
    if step is None:
      raise CheckpointError(f"no checkpoint in {self.directory}; run without --resume")
    target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)),
      abstract_state,
    )
    try:
      meta = self.manager.item_metadata(step)
      saved = getattr(meta, "state", None) if meta is not None else None
      if saved is not None:
        _check_shapes(saved, target)
      out = self.manager.restore(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardRestore(target), extra=ocp.args.JsonRestore()
        ),
      )
    except CheckpointError:
      raise
    except (ValueError, KeyError, TypeError) as e:
      raise CheckpointError(
        f"checkpoint {self.directory}/{step} does not match this run's state"
        f" ({type(e).__name__}: {str(e).splitlines()[0][:300]}); start a new --out dir"
      ) from None
    return out.state, dict(out.extra or {})

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.close()


def _key_name(k: Any) -> str:
  for attr in ("name", "key", "idx"):
    if hasattr(k, attr):
      return str(getattr(k, attr))
  return str(k)


def _check_shapes(saved: Any, target: Any) -> None:
  """Compares saved array shapes with the target's, naming the first mismatch."""
  tree = getattr(saved, "tree", saved)
  shapes = {
    getattr(m, "name", None): tuple(m.shape)
    for m in jax.tree.leaves(tree, is_leaf=lambda x: hasattr(x, "shape"))
    if hasattr(m, "shape")
  }
  flat_t = jax.tree_util.tree_flatten_with_path(target)[0]
  if None in shapes or not shapes:
    return
  for path, t in flat_t:
    name = ".".join(_key_name(k) for k in path)
    if name not in shapes:
      raise CheckpointError(
        f"checkpoint has no array {name!r} that this run's state needs; the model"
        " or config changed: start a new --out dir or restore the old config"
      )
    if shapes[name] != tuple(t.shape):
      raise CheckpointError(
        f"checkpoint array {name} has shape {shapes[name]}, this run expects"
        f" {tuple(t.shape)}: start a new --out dir or restore the old config"
      )
