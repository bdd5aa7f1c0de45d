"""``load(name)``: bundled assets as Arrow-cached `DatasetDict`s, else HF datasets."""

import importlib
import os
import pathlib
from collections.abc import Sequence

import numpy as np

from jaxlab.core.errors import DataError

# name -> (builder "module:function", class names or None).
BUNDLED: dict[str, str] = {
  "mnist": "jaxlab.data.images:mnist",
  "fashion_mnist": "jaxlab.data.images:fashion_mnist",
  "digits": "jaxlab.data.images:digits",
  "optdigits": "jaxlab.data.images:optdigits",
  "mnist1d": "jaxlab.data.images:mnist1d",
  "adult": "jaxlab.data.tabular:adult",
  "compas": "jaxlab.data.tabular:compas",
  "german": "jaxlab.data.tabular:german",
  "law": "jaxlab.data.tabular:law",
  "bank": "jaxlab.data.tabular:bank",
}
# name -> "module:function" reading a user's local copy (never cached, never downloaded).
LOCAL: dict[str, str] = {"scienceqa": "jaxlab.data.scienceqa:load"}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fmnist": "fashion_mnist", "law_school": "law"}


def cache_root() -> pathlib.Path:
  """The cache root, ``$JAXLAB_CACHE`` or ~/.cache/jaxlab: datasets, stand-ins, LLM replies."""
  root = os.environ.get("JAXLAB_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "jaxlab"
  )
  return pathlib.Path(root)


def cache_dir() -> pathlib.Path:
  """Where built datasets are cached (``cache_root() / "datasets"``)."""
  return cache_root() / "datasets"


def _to_datasetdict(splits):
  import datasets

  if isinstance(splits, datasets.DatasetDict):
    return splits
  out = {}
  for split, cols in splits.items():
    if hasattr(cols, "to_dict") and hasattr(cols, "columns"):  # a pandas frame
      out[split] = datasets.Dataset.from_pandas(cols, preserve_index=False)
      continue
    feats = {}
    for k, v in cols.items():
      v = np.asarray(v)
      if v.ndim == 1:
        feats[k] = datasets.Value(str(v.dtype))
      elif v.ndim == 2:
        feats[k] = datasets.Sequence(datasets.Value(str(v.dtype)), length=v.shape[1])
      else:
        arr = {3: datasets.Array2D, 4: datasets.Array3D}[v.ndim]
        feats[k] = arr(shape=v.shape[1:], dtype=str(v.dtype))
    out[split] = datasets.Dataset.from_dict(
      {k: np.asarray(v) for k, v in cols.items()}, features=datasets.Features(feats)
    )
  return datasets.DatasetDict(out)


def load(name: str, *, cache: bool = True):
  """A `datasets.DatasetDict` for a bundled asset, a local path or a cached HF name.

  Args:
    name: a name from ``BUNDLED`` (``mnist``, ``fashion_mnist``, ``digits``,
      ``optdigits``, ``mnist1d``, ``adult``, ``compas``, ``german``, ``law``,
      ``bank``), a local folder/file, or a Hugging Face dataset name already in
      the local cache (loaded offline).
    cache: keep built bundled datasets as Arrow under `cache_dir()`.

  Raises:
    DataError / AssetMissingError: unknown name or missing asset; the message
      lists the known names and the install line.
  """
  import datasets

  key = _ALIASES.get(name, name)
  if key in LOCAL:
    mod, fn = LOCAL[key].split(":")
    return getattr(importlib.import_module(mod), fn)()
  if key in BUNDLED:
    target = cache_dir() / key
    if cache and (target / "dataset_dict.json").exists():
      return datasets.load_from_disk(str(target))
    mod, fn = BUNDLED[key].split(":")
    dd = _to_datasetdict(getattr(importlib.import_module(mod), fn)())
    if cache:
      target.parent.mkdir(parents=True, exist_ok=True)
      dd.save_to_disk(str(target))
      return datasets.load_from_disk(str(target))
    return dd
  path = pathlib.Path(name).expanduser()
  if path.exists():
    if (path / "dataset_dict.json").exists():
      return datasets.load_from_disk(str(path))
    return datasets.load_dataset(str(path))
  os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
  try:
    return datasets.load_dataset(name)
  except Exception as e:  # datasets raises many kinds here
    raise DataError(
      f"unknown dataset {name!r}: not bundled (known: {', '.join(sorted(BUNDLED))}),"
      f" not a local path, and not in the Hugging Face cache ({type(e).__name__})."
      " Bundled assets install with scripts/setup.sh; other datasets must be"
      " downloaded by you beforehand (jaxlab never downloads)"
    ) from None


def _column(table, name: str, feature) -> np.ndarray:
  """One Arrow column as numpy; nested fixed-shape lists are flattened, not boxed."""
  import datasets
  import pyarrow as pa

  col = table.column(name).combine_chunks()
  shape = None
  if isinstance(feature, (datasets.Array2D, datasets.Array3D)):
    shape, dtype = tuple(feature.shape), feature.dtype
  elif isinstance(feature, datasets.Sequence) and getattr(feature, "length", -1) > 0 \
      and isinstance(feature.feature, datasets.Value):
    shape, dtype = (feature.length,), feature.feature.dtype
  if shape is None:
    return col.to_numpy(zero_copy_only=False)
  while pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) \
      or pa.types.is_large_list(col.type):
    col = col.flatten()
  return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False).reshape(
    (len(table), *shape)
  )


def to_numpy(split, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
  """Columns of one split as numpy arrays, keeping dtypes and fixed shapes.

  Reads Arrow buffers directly: image columns come back as ``uint8 [n, H, W]``
  in milliseconds (the generic numpy formatter boxes every row).
  """
  columns = list(columns or split.column_names)
  missing = [c for c in columns if c not in split.column_names]
  if missing:
    raise DataError(f"columns {missing} not in dataset; it has {split.column_names}")
  if getattr(split, "_indices", None) is not None:
    split = split.flatten_indices()
  table = split.data.table if hasattr(split.data, "table") else split.data
  return {c: _column(table, c, split.features[c]) for c in columns}
