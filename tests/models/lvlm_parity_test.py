"""LLaVA parity: jaxlab.models.lvlm vs transformers LlavaForConditionalGeneration (tiny, random).

The reference is transformers itself (torch, eager attention); the jaxlab side loads the
saved directory with no torch. Skips without torch/transformers.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from jaxlab.core.errors import ConfigError, DataError  # noqa: E402
from jaxlab.models import lvlm  # noqa: E402
from jaxlab.models.loaders.llava import load_llava  # noqa: E402

IMG = 99  # image token id (last id of the 100-token vocab)


def build_llava(path, *, feature_layer=-2, select="default", seed=0):
  """A tiny random LLaVA (CLIP 32px/patch 8 -> 16 patches, Llama GQA) saved to `path`."""
  vc = transformers.CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                     num_attention_heads=4, image_size=32, patch_size=8,
                                     projection_dim=16)
  tc = transformers.LlamaConfig(vocab_size=100, hidden_size=48, intermediate_size=64,
                                num_hidden_layers=2, num_attention_heads=4,
                                num_key_value_heads=2, max_position_embeddings=256,
                                rms_norm_eps=1e-5)
  n_tok = 16 + (select == "full")
  conf = transformers.LlavaConfig(vision_config=vc, text_config=tc, image_token_index=IMG,
                                  image_seq_length=n_tok, vision_feature_layer=feature_layer,
                                  vision_feature_select_strategy=select)
  conf._attn_implementation = "eager"
  torch.manual_seed(seed)
  model = transformers.LlavaForConditionalGeneration(conf).eval()
  with torch.no_grad():  # randomise norms and biases so a skipped one shows
    for name, p in model.named_parameters():
      if p.ndim == 1 and "norm" in name and name.endswith("weight"):
        p.copy_(1 + 0.1 * torch.randn_like(p))
      elif p.ndim == 1 and "class_embedding" not in name:
        p.copy_(0.1 * torch.randn_like(p))
      elif p.ndim == 2 and "embed_tokens" not in name and "position" not in name:
        p.mul_(5.0)  # HF init std 0.02 makes every layer near-identity
  model.save_pretrained(path)
  return model, n_tok


def padded_batch(n_tok, seed=1):
  """Row 0: one image; row 1: two images between text; row 2: text only, left-padded."""
  rng = np.random.default_rng(seed)
  txt = lambda k: list(rng.integers(3, IMG, k))
  rows = [[1] + [IMG] + txt(5), [1] + txt(2) + [IMG] + txt(3) + [IMG] + txt(1), [1] + txt(4)]
  rows = [lvlm.expand_image_tokens(r, IMG, n_tok) for r in rows]
  t = max(map(len, rows))
  ids = np.zeros((3, t), np.int32)
  mask = np.zeros((3, t), np.int32)
  for i, r in enumerate(rows):
    ids[i, t - len(r):], mask[i, t - len(r):] = r, 1
  pixels = rng.standard_normal((3, 32, 32, 3)).astype(np.float32)
  return ids, mask, pixels


def hf_logits(model, ids, mask, pixels):
  ids_t, mask_t = torch.tensor(ids, dtype=torch.long), torch.tensor(mask, dtype=torch.long)
  pos = (mask_t.cumsum(-1) - 1).clamp(min=0)
  with torch.no_grad():
    out = model(input_ids=ids_t, attention_mask=mask_t, position_ids=pos,
                pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)))
  return out.logits.float().numpy()


@pytest.mark.parametrize("feature_layer,select", [(-2, "default"), ([0, -1], "full")])
def test_logits_match_transformers_on_padded_batch(tmp_path, feature_layer, select):
  model, n_tok = build_llava(tmp_path, feature_layer=feature_layer, select=select)
  cfg, params, tok, proc = load_llava(str(tmp_path))
  assert cfg.num_image_tokens == n_tok and tok is None
  ids, mask, pixels = padded_batch(n_tok)
  want = hf_logits(model, ids, mask, pixels)
  got = np.asarray(lvlm.jit_forward(cfg, params, ids, mask, pixels))
  real = mask.astype(bool)
  assert np.abs(got - want)[real].max() < 1e-4, np.abs(got - want)[real].max()
  assert np.abs(want[real]).max() > 1.0  # the check is not vacuous


def test_greedy_tokens_match_hf_generate(tmp_path):
  model, n_tok = build_llava(tmp_path, seed=3)
  cfg, params, _, _ = load_llava(str(tmp_path))
  ids, mask, pixels = padded_batch(n_tok, seed=4)
  model.generation_config.eos_token_id = None  # fixed length: no early stop
  with torch.no_grad():
    want = model.generate(input_ids=torch.tensor(ids, dtype=torch.long),
                          attention_mask=torch.tensor(mask, dtype=torch.long),
                          pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)),
                          do_sample=False, max_new_tokens=12, pad_token_id=0).numpy()
  got = lvlm.generate(cfg, params, ids, mask, pixels, max_new_tokens=12, stop_ids=())
  np.testing.assert_array_equal(np.asarray(got.tokens), want[:, ids.shape[1]:])
  assert len(set(want[:, ids.shape[1]:].ravel().tolist())) > 3  # not a constant stream


def test_image_changes_the_output_and_counts_are_checked(tmp_path):
  build_llava(tmp_path, seed=5)
  cfg, params, _, _ = load_llava(str(tmp_path))
  ids, mask, pixels = padded_batch(16, seed=6)
  a = np.asarray(lvlm.jit_forward(cfg, params, ids, mask, pixels))
  b = np.asarray(lvlm.jit_forward(cfg, params, ids, mask, pixels[::-1].copy()))
  assert np.abs(a[0, -1] - b[0, -1]).max() > 1e-3  # row 0 sees image 0 -> image 2
  np.testing.assert_array_equal(a[2], b[2])  # the text-only row is untouched
  with pytest.raises(DataError, match="image tokens"):
    lvlm.generate(cfg, params, ids, mask, pixels[:2], max_new_tokens=2)
  with pytest.raises(DataError, match="run of 3 image tokens"):
    lvlm.expand_image_tokens([1, IMG, IMG, IMG, 5], IMG, 16)


def test_unsupported_variants_refuse_in_one_line(tmp_path):
  build_llava(tmp_path)
  conf = json.loads((tmp_path / "config.json").read_text())
  for mt, what in (("llava_next", "anyres"), ("llava_onevision", "OneVision")):
    (tmp_path / "config.json").write_text(json.dumps({**conf, "model_type": mt}))
    with pytest.raises(ConfigError, match=what) as e:
      load_llava(str(tmp_path))
    assert "\n" not in str(e.value)
  bad = {**conf, "vision_config": {**conf["vision_config"], "model_type": "siglip_vision_model"}}
  (tmp_path / "config.json").write_text(json.dumps(bad))
  with pytest.raises(ConfigError, match="only CLIP"):
    load_llava(str(tmp_path))
  with pytest.raises(ConfigError, match="anyres"):
    lvlm.ImageProcessing.from_hf({"image_grid_pinpoints": [[336, 672]]})


@pytest.mark.parametrize("do_pad", [False, True])
def test_preprocessing_matches_hf_pil_processor(do_pad):
  from transformers.models.llava.image_processing_pil_llava import LlavaImageProcessorPil

  hf = LlavaImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                              do_pad=do_pad)
  ours = lvlm.ImageProcessing.from_hf(json.loads(hf.to_json_string()))
  rng = np.random.default_rng(0)
  images = [rng.integers(0, 256, s, dtype=np.uint8) for s in ((40, 57, 3), (70, 30, 3),
                                                               (32, 32, 3), (20, 25, 3))]
  want = np.stack(hf(images=images, return_tensors="np")["pixel_values"]).transpose(0, 2, 3, 1)
  got = lvlm.preprocess(images, ours)
  assert got.shape == want.shape == (4, 32, 32, 3)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_exported_tiny_llava_round_trips_through_transformers(tmp_path):
  from jaxlab.methods.qvix.pipeline import prompt_ids
  from jaxlab.models.loaders.llava_export import tiny_random_llava

  cfg0 = tiny_random_llava(tmp_path, seed=7)
  cfg, params, tok, proc = load_llava(str(tmp_path))
  assert cfg.vision == cfg0.vision and cfg.image_token_id == cfg0.image_token_id
  assert cfg.text.replace(d_head=None) == cfg0.text and tok is not None
  assert proc.crop_hw == (32, 32)
  model = transformers.LlavaForConditionalGeneration.from_pretrained(str(tmp_path)).eval()
  ids = np.asarray([prompt_ids(tok, cfg, "<image>\nWhat colour is it?")], np.int32)
  assert (ids == cfg.image_token_id).sum() == 16 and ids[0, 0] == tok.bos_id
  mask = np.ones_like(ids)
  pixels = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype(np.float32)
  want = hf_logits(model, ids, mask, pixels)
  got = np.asarray(lvlm.jit_forward(cfg, params, ids, mask, pixels))
  assert np.abs(got - want).max() < 1e-4
