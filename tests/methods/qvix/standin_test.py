"""Stand-in LVLM training on a tiny decoder: frozen parts bit-identical, resume = uninterrupted."""

import jax
import numpy as np
import tokenizers

from jaxlab.methods.qvix import standin, standin_train
from jaxlab.models import lvlm
from jaxlab.models.loaders.llava_export import byte_tokenizer_json, tiny_config
from jaxlab.models.tokenizer import Tokenizer
from jaxlab.data import scienceqa


def _setup():
  js, vocab = byte_tokenizer_json()
  tok = Tokenizer(tokenizers.Tokenizer.from_str(js), bos_id=vocab - 3, eos_ids=(vocab - 2,),
                  add_bos=True)
  cfg = tiny_config(vocab, vocab - 1, d_model=32, layers=1)
  params = lvlm.init_params(cfg, jax.random.key(0))
  items = scienceqa.synthetic_items(8, seed=1)
  caps = [(it["image"], "Describe the image.", " " + standin.caption(it["objects"]))
          for it in items]
  return cfg, params, tok, standin_train.make_dataset(tok, cfg, caps), items


def _leaves_equal(a, b):
  return all(np.array_equal(np.asarray(x), np.asarray(y))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_align_stage_changes_only_the_projector_and_resumes_exactly(tmp_path):
  cfg, params, tok, data, _ = _setup()
  before = jax.tree.map(np.array, params)
  sc = standin_train.StageConfig(stage="align", steps=4, batch=4, lr=1e-2, ckpt_every=2)
  out, losses = standin_train.train_stage(cfg, params, data, sc, tmp_path / "a")
  assert _leaves_equal(out["decoder"], before["decoder"])       # bit-identical
  assert _leaves_equal(out["vision"], before["vision"])
  assert not _leaves_equal(out["projector"], before["projector"])
  assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
  # interrupted after 2 steps, then resumed to 4: the same projector, the same losses
  half = standin_train.StageConfig(stage="align", steps=2, batch=4, lr=1e-2, ckpt_every=2)
  standin_train.train_stage(cfg, params, data, half, tmp_path / "b")
  resumed, losses_b = standin_train.train_stage(cfg, params, data, sc, tmp_path / "b")
  assert _leaves_equal(resumed["projector"], out["projector"])
  assert losses_b == losses


def test_tune_stage_moves_the_decoder_through_lora(tmp_path):
  cfg, params, tok, _, items = _setup()
  vqa = [(it["image"], *standin.vqa_example(it)) for it in items]
  data = standin_train.make_dataset(tok, cfg, vqa)
  w = data["loss_mask"].sum(1)
  assert np.all(w >= 2)                                          # answer + EOS supervised
  sc = standin_train.StageConfig(stage="tune", steps=3, batch=4, lr=1e-2, lora_rank=2)
  out, losses = standin_train.train_stage(cfg, params, data, sc, tmp_path)
  assert not np.array_equal(out["decoder"]["layers"]["wq"], params["decoder"]["layers"]["wq"])
  np.testing.assert_array_equal(out["decoder"]["layers"]["w_up"],
                                params["decoder"]["layers"]["w_up"])  # no LoRA on the MLP
  assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_caption_and_vqa_text():
  objs = [{"shape": "circle", "colour": "red", "large": 1, "x": 6.3, "y": 16},
          {"shape": "square", "colour": "blue", "large": 0, "x": 25.1, "y": 12}]
  assert standin.caption(objs) == ("There are 2 shapes: a large red circle on the left, "
                                   "a small blue square on the right.")
  it = {"question": "How many shapes are in the picture?", "choices": ["1", "2"], "answer": 1}
  assert standin.vqa_example(it) == ("Question: How many shapes are in the picture?\n"
                                     "Options: 1\n2\nAnswer:", " 2")


def test_clip_tower_resolves_each_spec_and_trains_the_standin_only_when_missing(
    tmp_path, monkeypatch):
  import pytest

  from jaxlab.core import errors
  from jaxlab.models import clip_standin
  monkeypatch.setenv("JAXLAB_CACHE", str(tmp_path / "cache"))
  trained = []

  def fake_train(cfg, out_dir):  # records the call and leaves a cached stand-in behind
    trained.append((cfg.tag(), out_dir))
    path = clip_standin.cache_path(cfg)
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"")

  monkeypatch.setattr(clip_standin, "train", fake_train)
  assert standin.clip_tower("random", tmp_path) is None
  assert standin.clip_tower("cached", tmp_path) is None          # nothing cached: random
  quick = standin.clip_tower("clip-standin", tmp_path / "run")
  assert quick == clip_standin.cache_path(clip_standin.QUICK)
  assert trained == [(clip_standin.QUICK.tag(),
                      tmp_path / "run" / f"clip-standin-{clip_standin.QUICK.tag()}")]
  assert standin.clip_tower("clip-standin", tmp_path / "run") == quick
  assert len(trained) == 1                                        # cached now: no retraining
  assert standin.clip_tower("cached", tmp_path) == quick
  full = standin.clip_tower("clip-standin-full", tmp_path / "run")
  assert full == clip_standin.cache_path(clip_standin.FULL) != quick and len(trained) == 2
  assert standin.clip_tower(str(full), tmp_path) == full                 # a local folder
  with pytest.raises(errors.ConfigError, match="neither one of"):
    standin.clip_tower(str(tmp_path / "absent"), tmp_path)
