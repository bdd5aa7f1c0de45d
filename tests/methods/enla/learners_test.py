"""Prompt learners on a tiny random CLIP: frozen backbone, vmapped seeds, EnLa at init."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.enla import learners, train
from jaxlab.methods.enla.config import PromptConfig
from jaxlab.methods.enla.ot import OTConfig
from jaxlab.models import clip
from jaxlab.models.clip_tokenizer import CLIPTokenizer

CLASSES = ("red circle", "blue star", "green square")


@pytest.fixture(scope="module")
def setup():
  cfg = clip.CLIPConfig(
    text=clip.TextConfig(width=16, layers=2, heads=2, mlp=32, context_length=12),
    vision=clip.VisionConfig(width=16, layers=2, heads=2, mlp=32, image_size=32,
                             patch_size=16),
    projection_dim=8)
  model = clip.CLIP(cfg)
  tok = CLIPTokenizer(12)
  params = model.init(jax.random.key(0), jnp.asarray(tok(["a"])),
                      jnp.zeros((1, 32, 32, 3)))["params"]
  bank = learners.make_bank(model, params, tok, CLASSES, ("a photo of a {}.", "a {}"),
                            hidden=True)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (2, 6, 32, 32, 3)).astype(np.uint8)
  labels = np.tile(np.array([0, 1, 2, 0, 1, 2], np.int32), (2, 1))
  return model, tok, params, bank, images, labels


def _cfg(method, **kw):
  return PromptConfig(method=method, steps=2, batch=3, lr=1e-2, ot=OTConfig(iterations=10), **kw)


@pytest.mark.parametrize("method,kw", [
  ("coop", {}), ("plot", {}),
  ("enprompt", {"enla_kind": "extra_block", "ot_mode": "logits", "fuse": "concat"})])
def test_only_prompt_params_change(setup, tmp_path, method, kw):
  model, tok, params, bank, images, labels = setup
  cfg = _cfg(method, **kw)
  learner = learners.make_learner(model, params, tok, cfg)
  before = jax.device_get(jax.vmap(learner.init)(jax.random.split(jax.random.key(0), 2)))
  frozen = jax.tree.map(np.array, params)
  state = train.train_prompts(learner, params, images, labels, bank, cfg, tmp_path)
  after = jax.device_get(state.params)
  jax.tree.map(np.testing.assert_array_equal, after["clip"], frozen)
  changed = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), after["learn"], before)
  assert max(jax.tree.leaves(changed)) > 0
  acc = train.evaluate(learner, params, after["learn"], images[0], labels[0], bank)
  assert acc.shape == (2,) and np.isfinite(acc).all()


def test_vmapped_seed_gradient_is_per_seed(setup):
  model, tok, params, bank, images, labels = setup
  cfg = _cfg("coop")
  learner = learners.make_learner(model, params, tok, cfg)
  learn = jax.vmap(learner.init)(jax.random.split(jax.random.key(1), 2))
  batch = {"pixels": jnp.asarray(images, jnp.float32) / 255.0, "label": jnp.asarray(labels)}
  key = jax.random.key(2)
  loss_fn = train.make_loss(learner, bank, 2)
  g = jax.grad(lambda p: loss_fn(p, {}, batch, key)[0])({"clip": params, "learn": learn})
  k0 = jax.random.split(key, 2)[0]
  one = jax.tree.map(lambda x: x[0], learn)
  b0 = jax.tree.map(lambda x: x[0], batch)
  g0 = jax.grad(lambda p: learner.loss(p, params, b0, bank, k0)[0])(one)
  close = lambda a, b: np.testing.assert_allclose(a[0], b, rtol=1e-5, atol=1e-6)
  jax.tree.map(close, g["learn"], g0)
  assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(g["clip"]))


@pytest.mark.parametrize("kind", ["adapter", "linear_id", "extra_block"])
def test_enla_starts_at_identity_and_zero_shot(setup, kind):
  model, tok, params, bank, images, _ = setup
  cfg = _cfg("enprompt", enla_kind=kind, strength="none", vprompt_len=1)
  learner = learners.make_learner(model, params, tok, cfg)
  p = learner.init(jax.random.key(0))
  pixels = jnp.asarray(images[0], jnp.float32) / 255.0
  # With the visual prompt tokens' effect removed (zero-shot text check): text set at init.
  zs = learners.make_learner(model, params, tok, dataclasses.replace(cfg, method="zero_shot"))
  assert zs.logits({}, params, pixels, bank).shape == (6, 3)
  out = learner.logits(p, params, pixels, bank)
  assert out.shape == (6, 3) and np.isfinite(np.asarray(out)).all()
  # EnLa output at init equals the frozen (normalised) text features.
  if kind == "extra_block":
    ref = bank["wset"]
    got = model.apply({"params": params},
                      jnp.asarray(bank["tids"]).reshape(6, -1), method=clip.CLIP.encode_text)
    np.testing.assert_allclose(got.reshape(ref.shape), ref, atol=1e-5)
  else:
    layer = p["enla"]
    w = clip.normalize(bank["wset"])
    mod = {"adapter": learners.modules.Adapter(8), "linear_id": learners.modules.LinearId(8)}[kind]
    np.testing.assert_allclose(mod.apply({"params": layer}, w), w, atol=1e-6)
