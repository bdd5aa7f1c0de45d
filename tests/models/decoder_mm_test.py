"""``decoder_ops.mm``: fp32 is a plain einsum; bf16 runs bf16 x bf16 -> fp32 products both ways.

The reference gradients come from ``jax.vjp`` of an fp32 einsum over the same (bf16-rounded)
inputs, not from ``mm``'s hand-written backward.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.models import decoder_ops as ops

# every product the decoder routes through mm, with small shapes
SPECS = {
  "btm,mhd->bthd": ((2, 5, 12), (12, 3, 4)),
  "bthd,hdm->btm": ((2, 5, 3, 4), (3, 4, 12)),
  "bthd,hdm->bthm": ((2, 5, 3, 4), (3, 4, 12)),
  "...m,mf->...f": ((2, 5, 12), (12, 20)),
  "bkgts,bskd->btkgd": ((2, 1, 3, 5, 6), (2, 6, 1, 4)),
  "btkgd,bskd->bkgts": ((2, 5, 1, 3, 4), (2, 6, 1, 4)),
}


def _inputs(spec, dtype):
  sx, sw = SPECS[spec]
  kx, kw = jax.random.split(jax.random.key(len(spec)))
  return jax.random.normal(kx, sx).astype(dtype), jax.random.normal(kw, sw).astype(dtype)


@pytest.mark.parametrize("spec", list(SPECS))
def test_fp32_is_the_plain_einsum(spec):
  x, w = _inputs(spec, jnp.float32)
  np.testing.assert_array_equal(np.asarray(ops.mm(spec, x, w)), np.asarray(jnp.einsum(spec, x, w)))


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("out", [None, jnp.float32])
def test_bf16_value_and_gradients_match_fp32_autodiff(spec, out):
  x, w = _inputs(spec, jnp.bfloat16)
  y, pull = jax.vjp(lambda a, b: ops.mm(spec, a, b, out=out), x, w)
  assert y.dtype == (out or jnp.bfloat16)
  g = jax.random.normal(jax.random.key(7), y.shape).astype(y.dtype)
  dx, dw = pull(g)
  assert dx.dtype == jnp.bfloat16 and dw.dtype == jnp.bfloat16
  f32 = lambda a: a.astype(jnp.float32)
  y_ref, pull_ref = jax.vjp(lambda a, b: jnp.einsum(spec, a, b), f32(x), f32(w))
  for got, want in zip((y, *(dx, dw)), (y_ref, *pull_ref(f32(g)))):
    got, want = np.asarray(f32(got)), np.asarray(want)
    assert np.linalg.norm(got - want) <= 1e-2 * np.linalg.norm(want)  # bf16 output rounding


@pytest.mark.parametrize("out", [None, jnp.float32])
def test_bf16_backward_products_take_bf16_operands(out):
  """Autodiff of a preferred-fp32 einsum promotes the weight to fp32 in the backward
  (half speed on AVX512-BF16 CPUs); mm's backward keeps every product bf16 x bf16, also
  when the output (so the cotangent) is fp32, as for attention scores and logits."""
  x, w = _inputs("...m,mf->...f", jnp.bfloat16)
  loss = lambda a, b: jnp.sum(ops.mm("...m,mf->...f", a, b, out=out).astype(jnp.float32) ** 2)
  jaxpr = jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(x, w)
  dots = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "dot_general"]
  dots += [e for eq in jaxpr.jaxpr.eqns for sub in jax.core.jaxprs_in_params(eq.params)
           for e in sub.eqns if e.primitive.name == "dot_general"]
  assert len(dots) == 3  # forward, dx, dw
  for e in dots:
    assert [v.aval.dtype for v in e.invars] == [jnp.bfloat16, jnp.bfloat16]
    assert e.params["preferred_element_type"] == jnp.float32
