"""The split forward pass and the FedImpro loss's gradient routing."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxlab.core.errors import ConfigError
from jaxlab.methods.fedimpro import fake, split
from jaxlab.methods.fedimpro.estimator import FeatureStats
from jaxlab.methods.fedimpro.loss import fedimpro_loss


class Tiny(nn.Module):
  """Dense -> ReLU | BN -> Dense, or with ``bn_high=False`` Dense -> BN -> ReLU | Dense."""

  bn_high: bool = True

  def setup(self):
    self.l1 = nn.Dense(6)
    self.bn = nn.BatchNorm(momentum=0.9)
    self.l2 = nn.Dense(3)

  def low(self, x, train=False):
    h = self.l1(x)
    if not self.bn_high:
      h = self.bn(h, use_running_average=not train)
    return nn.relu(h).reshape(x.shape[0], 2, 3)

  def high(self, h, train=False):
    h = h.reshape(h.shape[0], -1)
    if self.bn_high:
      h = self.bn(h, use_running_average=not train)
    return self.l2(h)

  def __call__(self, x, train=False):
    return self.high(self.low(x, train), train)


def _setup(bn_high=True):
  model = Tiny(bn_high=bn_high)
  sm = split.from_flax(model)
  x = jax.random.normal(jax.random.key(0), (5, 4))
  y = jnp.array([0, 1, 2, 0, 1])
  variables = sm.init(jax.random.key(1), x)
  params = variables["params"]
  state = {"batch_stats": variables["batch_stats"]}
  return model, sm, x, y, params, state


def test_split_composes_to_call_and_feature_shape():
  model, sm, x, _, params, state = _setup()
  logits, h, _ = split.logits_split(sm, params, state, x, None, train=False)
  full = model.apply({"params": params, **state}, x)
  np.testing.assert_allclose(logits, full, rtol=1e-6)
  assert split.feature_shape(sm, {"params": params, **state}, x) == (2, 3)
  assert h.shape == (5, 2, 3)
  with pytest.raises(ConfigError):
    split.from_flax(nn.Dense(3))


def test_fake_gradients_reach_only_high_params():
  # BN in the high part would couple fake and real rows through the batch statistics
  # (as in the reference); the stop-gradient claim is about the fake rows themselves.
  _, sm, x, y, params, state = _setup(bn_high=False)
  labels = fake.balanced_labels(5, 3)
  stats = FeatureStats(jnp.ones((3, 6)), jnp.full((3, 6), 0.1))
  h_fake = fake.sample_fake(jax.random.key(2), stats, labels)

  def parts(p):
    _, (_, _, m) = fedimpro_loss(p, state, sm, x, y, h_fake, labels, jnp.float32(0.7))
    return m["ce_real"], m["ce_fake"]

  g_fake = jax.grad(lambda p: parts(p)[1])(params)
  np.testing.assert_array_equal(g_fake["l1"]["kernel"], 0.0)
  np.testing.assert_array_equal(g_fake["l1"]["bias"], 0.0)
  assert float(jnp.abs(g_fake["l2"]["kernel"]).sum()) > 0
  # The full loss's low-level gradient is exactly the real-CE one; the high-level one
  # is real + w * fake.
  g_all = jax.grad(lambda p: fedimpro_loss(p, state, sm, x, y, h_fake, labels,
                                           jnp.float32(0.7))[0])(params)
  g_real = jax.grad(lambda p: parts(p)[0])(params)
  np.testing.assert_allclose(g_all["l1"]["kernel"], g_real["l1"]["kernel"], rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(g_all["l2"]["kernel"],
                             g_real["l2"]["kernel"] + 0.7 * g_fake["l2"]["kernel"],
                             rtol=1e-5, atol=1e-7)


def test_loss_matches_slow_reference_and_bn_sees_all_rows():
  _, sm, x, y, params, state = _setup()
  labels = fake.balanced_labels(5, 3)
  h_fake = jax.random.normal(jax.random.key(3), (labels.shape[0], 6))
  loss, (new_state, h_real, _) = fedimpro_loss(params, state, sm, x, y, h_fake, labels,
                                               jnp.float32(2.0))
  # Slow reference: concatenate by hand, one BN over B + M rows.
  h = nn.relu(x @ params["l1"]["kernel"] + params["l1"]["bias"])
  hh = jnp.concatenate([h, h_fake])
  mean, var = hh.mean(0), hh.var(0)
  bn = (hh - mean) / jnp.sqrt(var + 1e-5) * params["bn"]["scale"] + params["bn"]["bias"]
  logits = bn @ params["l2"]["kernel"] + params["l2"]["bias"]
  ce = optax.softmax_cross_entropy_with_integer_labels
  ref = ce(logits[:5], y).mean() + 2.0 * ce(logits[5:], labels).mean()
  np.testing.assert_allclose(loss, ref, rtol=1e-5)
  np.testing.assert_allclose(new_state["batch_stats"]["bn"]["mean"], 0.1 * mean, rtol=1e-5)
  np.testing.assert_allclose(h_real, h, rtol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_staged_models_split_composes(name):
  from jaxlab.models import CNN, MLP, ResNet
  module, split_after, shape = {
    "mlp": (MLP(hidden=(8, 8), num_classes=3), 0, (8,)),
    "cnn": (CNN(num_classes=3, channels=(2, 4), hidden=8), 0, (4, 4, 2)),
    "resnet": (ResNet(stage_sizes=(1, 1), width=4, num_classes=3), 1, (8, 8, 4)),
  }[name]
  sm = split.from_flax(module, split_after=split_after)
  x = jax.random.uniform(jax.random.key(0), (2, 8, 8, 1))
  variables = sm.init(jax.random.key(1), x)
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}
  assert split.feature_shape(sm, variables, x) == shape
  logits, _, _ = split.logits_split(sm, params, state, x, None, train=False)
  np.testing.assert_allclose(logits, module.apply(variables, x), rtol=1e-5, atol=1e-6)
  with pytest.raises(ConfigError):
    split.from_flax(module, split_after=module.num_stages - 1)
