"""The im2col lowering of the FedAvg CNN computes the same function as nn.Conv."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxlab.models import CNN


def test_im2col_cnn_equals_conv_cnn_with_reshaped_kernels():
  x = jax.random.normal(jax.random.key(0), (3, 28, 28))
  conv = CNN(channels=(4, 6), hidden=16)
  params = conv.init(jax.random.key(1), x)["params"]
  im2col = jax.tree.map(lambda a: a, params)
  for name in ("conv0", "conv1"):
    k = params[name]["kernel"]                     # [5, 5, C_in, C_out]
    im2col[name] = {"Dense_0": {"kernel": k.reshape(-1, k.shape[-1]), "bias": params[name]["bias"]}}
  want = conv.apply({"params": params}, x)
  got = CNN(channels=(4, 6), hidden=16, im2col=True).apply({"params": im2col}, x)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  assert jnp.abs(want).max() > 0


def _lax_conv(x, k):
  """The reference: XLA's convolution, written out here (not the module's helper)."""
  return jax.lax.conv_general_dilated(x, k, (1, 1), [(2, 2), (2, 2)],
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_shift_conv_equals_xla_conv_in_value_and_both_derivative_modes():
  from jaxlab.models.cnn import shift_conv
  kx, kk, kt = jax.random.split(jax.random.key(3), 3)
  for c_in in (1, 3):
    x = jax.random.normal(kx, (2, 12, 10, c_in))
    k = jax.random.normal(kk, (5, 5, c_in, 6))
    np.testing.assert_allclose(shift_conv(x, k), _lax_conv(x, k), rtol=1e-5, atol=1e-5)
    # Reverse mode, through a nonlinear loss so every cotangent entry differs.
    loss = lambda f: lambda x, k: jnp.sum(jnp.tanh(f(x, k)) * jnp.arange(6.0))
    got = jax.grad(loss(shift_conv), argnums=(0, 1))(x, k)
    want = jax.grad(loss(_lax_conv), argnums=(0, 1))(x, k)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
      assert jnp.abs(w).max() > 0.1
    # Forward mode, with a tangent on each argument.
    dx, dk = jax.random.normal(kt, x.shape), jax.random.normal(kt, k.shape)
    _, got_t = jax.jvp(shift_conv, (x, k), (dx, dk))
    _, want_t = jax.jvp(_lax_conv, (x, k), (dx, dk))
    np.testing.assert_allclose(got_t, want_t, rtol=1e-4, atol=1e-4)
    # Per-client kernels under vmap (the vmapped engine's case).
    xs, ks = jnp.stack([x, 2 * x]), jnp.stack([k, -k])
    np.testing.assert_allclose(jax.vmap(shift_conv)(xs, ks), jax.vmap(_lax_conv)(xs, ks),
                               rtol=1e-5, atol=1e-4)


def test_first_conv_options_draw_the_same_weights_and_compute_the_same_function():
  x = jax.random.uniform(jax.random.key(0), (4, 28, 28))
  y = jnp.arange(4) % 10
  mods = {o: CNN(channels=(4, 6), hidden=16, first_conv=o) for o in ("xla", "shift")}
  params = {o: m.init(jax.random.key(1), x)["params"] for o, m in mods.items()}
  jax.tree.map(np.testing.assert_array_equal, params["xla"], params["shift"])
  loss = lambda o: lambda p: jnp.mean(
    -jax.nn.log_softmax(mods[o].apply({"params": p}, x))[jnp.arange(4), y])
  grads = {o: jax.grad(loss(o))(params["xla"]) for o in mods}
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               grads["xla"], grads["shift"])
  assert float(jnp.abs(grads["xla"]["conv0"]["kernel"]).max()) > 1e-3
  with np.testing.assert_raises(ValueError):
    CNN(first_conv="fast").init(jax.random.key(1), x)
