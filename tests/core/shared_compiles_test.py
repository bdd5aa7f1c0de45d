"""The test suite's in-memory executable sharing (tests/conftest.py) reuses only what it may."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import compiler

pytestmark = pytest.mark.skipif(os.environ.get("JAXLAB_TEST_SHARE_COMPILES", "1") == "0",
                                reason="executable sharing is off")


@pytest.fixture
def hits(monkeypatch):
  """Keep every executable (not only slow compiles) and count the cache hits JAX records."""
  monkeypatch.setattr(compiler._cache_write, "min_seconds", 0.0)
  seen = []

  def on_event(event, **_):
    if event == "/jax/compilation_cache/cache_hits":
      seen.append(event)

  jax.monitoring.register_event_listener(on_event)
  yield seen
  jax.monitoring.unregister_event_listener(on_event)


def _program(scale, offset):
  """A new closure (a new ``jit``) each call: what every ``run()`` of a study builds."""
  return jax.jit(lambda x: jnp.tanh(x * scale + offset).sum(0))


def test_a_rebuilt_identical_program_is_shared_and_gives_the_same_numbers(hits):
  x = jnp.arange(24.0).reshape(6, 4) / 7.0
  off = jnp.linspace(-1.0, 1.0, 4 * 6).reshape(6, 4)
  first = _program(3.25, off)(x)
  assert not hits
  second = _program(3.25, off)(x)
  assert len(hits) == 1
  np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_other_constants_get_their_own_numbers(hits):
  """A program that differs only in a closed-over constant (embedded scalar or a hoisted
  array argument) must compute with its own constant, shared executable or not."""
  x = jnp.arange(24.0).reshape(6, 4) / 5.0
  off = jnp.linspace(-1.0, 1.0, 24).reshape(6, 4)
  want = lambda scale, o: np.tanh(np.asarray(x) * scale + np.asarray(o)).sum(0)
  cases = [(1.5, off), (2.5, off), (1.5, off * 0.5), (1.5, off)]
  for scale, o in cases:
    np.testing.assert_allclose(np.asarray(_program(scale, o)(x)), want(scale, o), rtol=1e-6)
  # Only case 4 repeats case 1: closed-over arrays are embedded in the program text at this
  # jax's defaults (no hoisted const args), so a changed array is a new program.
  assert len(hits) == 1


def test_no_sharing_across_devices(hits):
  x = jnp.ones((4, 4))
  outs = []
  for d in jax.devices()[:2]:
    y = jax.device_put(x, d)
    out = _program(0.5, 0.25)(y)
    assert out.devices() == {d}
    outs.append(np.asarray(out))
  assert not hits
  np.testing.assert_array_equal(outs[0], outs[1])
