"""APW on german (LR): an eta grid x 5 seeded 70/30 splits per fairness notion."""

from experiments.apw import split_study
from experiments.apw.split_study import report, run  # noqa: F401

DESCRIPTION = split_study.description("german")
CLAIM = split_study.claim("german")


def get_config(smoke: bool = False):
  return split_study.get_config("german", smoke)
