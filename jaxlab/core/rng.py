"""Key helpers: one root key, `fold_in` by purpose, step and client.

The key is a step argument, never state: the caller passes the same root key
every step and ``step_key(key, state.step)`` makes each step's key unique, so a
resumed run reproduces the keys of an uninterrupted one.
"""

import jax

# Purpose tags for `purpose(key, tag)`.
INIT = 0
DATA = 1
STEP = 2
EVAL = 3
SAMPLE = 4
NOISE = 5


def root_key(seed: int) -> jax.Array:
  """A typed PRNG key from an integer seed."""
  return jax.random.key(seed)


def step_key(key: jax.Array, step: jax.typing.ArrayLike) -> jax.Array:
  """The key of one training step."""
  return jax.random.fold_in(key, step)


def client_key(key: jax.Array, cid: jax.typing.ArrayLike) -> jax.Array:
  """The key of one client, stable across rounds because ids are stable."""
  return jax.random.fold_in(key, cid)


def purpose(key: jax.Array, tag: int) -> jax.Array:
  """A key for one purpose (INIT, DATA, STEP, ...), independent of the others."""
  return jax.random.fold_in(key, tag)
