"""Prompt learners on a tiny random CLIP: frozen backbone, vmapped seeds, EnLa at init."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxlab.methods.enla import learners, train
from jaxlab.core import errors
from jaxlab.methods.enla.config import ENSEMBLE, PromptConfig
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
                            hidden=True)  # used by the coop/plot tests (first template)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (2, 6, 32, 32, 3)).astype(np.uint8)
  labels = np.tile(np.array([0, 1, 2, 0, 1, 2], np.int32), (2, 1))
  return model, tok, params, bank, images, labels


def _cfg(method, **kw):
  kw.setdefault("lr", 1e-2)
  return PromptConfig(method=method, steps=2, batch=3, ot=OTConfig(iterations=10), **kw)


@pytest.mark.parametrize("method,kw", [
  ("coop", {}), ("plot", {}),
  ("enprompt", {"enla_kind": "extra_block", "ot_mode": "logits", "fuse": "concat"})])
def test_only_prompt_params_change(setup, tmp_path, method, kw):
  model, tok, params, _, images, labels = setup
  cfg = _cfg(method, **kw)
  bank = _bank_for(model, params, tok, cfg)
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
  model, tok, params, _, images, labels = setup
  cfg = _cfg("coop")
  bank = _bank_for(model, params, tok, cfg)
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


def _zero_shot_reference(model, params, tok, pixels, templates):
  """Zero-shot CLIP logits written out directly from the two towers (no learner code)."""
  img = model.apply({"params": params}, pixels, method=clip.CLIP.encode_image)
  img = img / np.linalg.norm(img, axis=-1, keepdims=True)
  feats = []
  for t in templates:
    ids = jnp.asarray(tok([t.format(c) for c in CLASSES]))
    w = np.asarray(model.apply({"params": params}, ids, method=clip.CLIP.encode_text))
    feats.append(w / np.linalg.norm(w, axis=-1, keepdims=True))
  w = np.mean(feats, 0)
  w = w / np.linalg.norm(w, axis=-1, keepdims=True)
  return np.exp(float(params["logit_scale"])) * np.asarray(img) @ w.T


def _bank_for(model, params, tok, cfg):
  return learners.make_bank(model, params, tok, CLASSES, learners.bank_templates(cfg),
                            hidden=cfg.enla_kind == "extra_block")


@pytest.mark.parametrize("kind,kw", [
  ("adapter", {}), ("linear_id", {}), ("extra_block", {}), ("none", {}), ("coop", {}),
  ("adapter", {"fuse": "concat"}), ("adapter", {"strength": "class_mean"}),
  ("extra_block", {"extra_block_init": "random"})])
def test_enprompt_step0_logits_equal_zero_shot(setup, kind, kw):
  """Gate at zero + identity EnLa: EnPrompt's step-0 logits are zero-shot CLIP's (1e-6).

  Run in float64 so that 1e-6 tests the algebra, not float32 summation order (in float32 the
  two paths differ by up to 2e-6 on logits of about 5).
  """
  model, tok, params, _, images, _ = setup
  cfg = _cfg("enprompt", enla_kind=kind, **kw)
  with jax.enable_x64(True):
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), params)
    bank = _bank_for(model, params, tok, cfg)
    learner = learners.make_learner(model, params, tok, cfg)
    p = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), learner.init(jax.random.key(0)))
    pixels = jnp.asarray(images[0], jnp.float64) / 127.5 - 1
    ref = _zero_shot_reference(model, params, tok, pixels, cfg.templates)
    got = np.asarray(learner.logits(p, params, pixels, bank))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    # Not vacuous: an open gate moves the logits.
    opened = {**p, "gate": jnp.full_like(p["gate"], 0.5)}
    assert np.abs(np.asarray(learner.logits(opened, params, pixels, bank)) - ref).max() > 1e-3


def test_ungated_prompts_and_raw_extra_block_do_not_start_at_zero_shot(setup):
  """The ablation settings that reproduce the old confounds really do move step 0."""
  model, tok, params, _, images, _ = setup
  pixels = jnp.asarray(images[0], jnp.float32) / 127.5 - 1
  ref = _zero_shot_reference(model, params, tok, pixels, ("a photo of a {}.",))
  for kw in ({"vprompt_gate": "none"},
             {"enla_kind": "extra_block", "extra_block_init": "last_raw"}):
    cfg = _cfg("enprompt", **kw)
    learner = learners.make_learner(model, params, tok, cfg)
    out = learner.logits(learner.init(jax.random.key(0)), params, pixels,
                         _bank_for(model, params, tok, cfg))
    assert np.abs(np.asarray(out) - ref).max() > 1e-4, kw


@pytest.mark.parametrize("method", ["zero_shot", "coop"])
def test_template_ensemble_is_shared_and_coop_starts_at_zero_shot(setup, method):
  model, tok, params, _, images, _ = setup
  cfg = _cfg(method, templates=ENSEMBLE)
  learner = learners.make_learner(model, params, tok, cfg)
  bank = _bank_for(model, params, tok, cfg)
  pixels = jnp.asarray(images[0], jnp.float32) / 127.5 - 1
  ref = _zero_shot_reference(model, params, tok, pixels, ENSEMBLE)
  single = _zero_shot_reference(model, params, tok, pixels, ENSEMBLE[:1])
  assert np.abs(ref - single).max() > 1e-3  # the ensemble is a different classifier
  np.testing.assert_allclose(learner.logits(learner.init(jax.random.key(0)), params, pixels, bank),
                             ref, atol=1e-5, rtol=0)


def test_learned_context_refuses_templates_with_other_prefix_lengths(setup):
  model, tok, params, *_ = setup
  with pytest.raises(errors.ConfigError, match="n_ctx=4"):
    learners.make_learner(model, params, tok, _cfg("coop", templates=("a {}",)))


def test_extra_block_is_identity_at_init(setup):
  model, tok, params, *_ = setup
  cfg = _cfg("enprompt", enla_kind="extra_block")
  p = learners.make_learner(model, params, tok, cfg).init(jax.random.key(0))
  block = clip.Block(16, 2, 32, 1e-5, "quick_gelu")
  h = jax.random.normal(jax.random.key(1), (3, 12, 16))
  np.testing.assert_array_equal(block.apply({"params": p["enla"]}, h, clip.causal_mask(12)), h)
  raw = learners.make_learner(model, params, tok, dataclasses.replace(
    cfg, extra_block_init="last_raw")).init(jax.random.key(0))
  assert np.abs(block.apply({"params": raw["enla"]}, h, clip.causal_mask(12)) - h).max() > 1e-2


def test_image_strength_varies_with_the_image_and_the_class_set(setup):
  """The strengthening summary is the zero-shot posterior-weighted class feature, per image."""
  model, tok, params, bank, images, _ = setup
  pixels = jnp.asarray(images[0], jnp.float32) / 127.5 - 1
  z0 = clip.normalize(model.apply({"params": params}, pixels, method=clip.CLIP.encode_image))
  wbar = learners.class_features(bank["wset"])
  scale = np.exp(float(params["logit_scale"]))
  got = np.asarray(modules_image_summary(z0, wbar, scale))
  logit = scale * np.asarray(z0, np.float64) @ np.asarray(wbar, np.float64).T
  post = np.exp(logit - logit.max(-1, keepdims=True))
  post /= post.sum(-1, keepdims=True)
  np.testing.assert_allclose(got, post @ np.asarray(wbar, np.float64), atol=1e-6)
  assert np.abs(got[0] - got[1]).max() > 1e-4  # varies with the image
  other = np.asarray(modules_image_summary(z0, wbar[:2], scale))
  assert np.abs(other - got).max() > 1e-4  # and with the class set


def modules_image_summary(z0, wbar, scale):
  return learners.modules.image_summary(z0, wbar, scale)


def test_ot_logits_mode_adds_lambda_tau_ot_to_the_training_logits(setup):
  """loss = CE(tau cos + lambda tau OT) in logits mode; lambda 0 equals no OT."""
  model, tok, params, _, images, labels = setup
  pixels = jnp.asarray(images[0], jnp.float32) / 127.5 - 1
  batch = {"pixels": pixels, "label": jnp.asarray(labels[0])}
  losses = {}
  for lam, mode in [(0.0, "logits"), (1.0, "logits"), (2.0, "logits"), (1.0, "none")]:
    cfg = _cfg("enprompt", ot_mode=mode, ot_lambda=lam)
    learner = learners.make_learner(model, params, tok, cfg)
    bank = _bank_for(model, params, tok, cfg)
    losses[(lam, mode)] = float(learner.loss(learner.init(jax.random.key(0)), params, batch,
                                             bank, jax.random.key(1))[0])
  # Reference at init: cos logits are zero-shot's; OT set = frozen features of the 4 templates.
  scale = np.exp(float(params["logit_scale"]))
  ref = _zero_shot_reference(model, params, tok, pixels, ("a photo of a {}.",))
  _, patches = model.apply({"params": params}, pixels, method=clip.CLIP.image_tokens)
  oset = bank["wset"][:, 1:]
  ot = np.asarray(learners.otlib.ot_logits(patches, oset, cfg.ot))
  for lam in (0.0, 1.0, 2.0):
    z = ref + lam * scale * ot
    z = z - z.max(-1, keepdims=True)
    ce = np.mean(np.log(np.exp(z).sum(-1)) - z[np.arange(6), labels[0]])
    np.testing.assert_allclose(losses[(lam, "logits")], ce, rtol=1e-5)
  np.testing.assert_allclose(losses[(0.0, "logits")], losses[(1.0, "none")], rtol=1e-6)
