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
