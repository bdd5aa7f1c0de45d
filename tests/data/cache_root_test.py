"""Every cache (datasets, CLIP stand-in, QVix stand-in and LLM replies) lives under one root
that ``$JAXLAB_CACHE`` moves, so a cold-cache run or a read-only home works."""

import pathlib

from jaxlab.data import cache_dir, cache_root
from jaxlab.models import clip_standin
from jaxlab.methods.qvix import standin


def test_jaxlab_cache_moves_every_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("JAXLAB_CACHE", str(tmp_path))
  assert cache_root() == tmp_path
  assert cache_dir() == tmp_path / "datasets"
  assert clip_standin.cache_path(clip_standin.QUICK).parent == tmp_path / "clip_standin"
  assert standin.newest_clip_standin() is None          # nothing cached under the new root
  model = tmp_path / "clip_standin" / "abc" / "model.safetensors"
  model.parent.mkdir(parents=True)
  model.write_bytes(b"")
  assert standin.newest_clip_standin() == model.parent


def test_default_root_is_the_home_cache(monkeypatch):
  monkeypatch.delenv("JAXLAB_CACHE", raising=False)
  assert cache_root() == pathlib.Path.home() / ".cache" / "jaxlab"
