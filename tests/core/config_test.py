import dataclasses
from typing import Literal

import pytest

from jaxlab.core import config
from jaxlab.core.errors import ConfigError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Opt:
  lr: float = 0.1
  name: Literal["adam", "sgd"] = "adam"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cfg:
  opt: Opt = Opt()
  steps: int = 10
  widths: tuple[int, ...] = (1, 2)
  flag: bool = False
  tag: str | None = None


def test_overrides_are_typed():
  cfg = config.apply_overrides(
    Cfg(), ["opt.lr=0.5", "steps=3", "widths=4,5,6", "flag=true", "opt.name=sgd", "tag=x"]
  )
  assert cfg == Cfg(opt=Opt(lr=0.5, name="sgd"), steps=3, widths=(4, 5, 6), flag=True, tag="x")
  assert config.apply_overrides(cfg, ["tag=none"]).tag is None


@pytest.mark.parametrize("item, words", [
  ("stepz=3", ["unknown config key 'stepz'", "steps", "opt"]),
  ("opt.lrr=1", ["unknown config key 'opt.lrr'", "opt.lr"]),
  ("steps=abc", ["expected a value of type int"]),
  ("opt.name=rmsprop", ["must be one of adam, sgd"]),
  ("opt=1", ["is a group", "opt.lr"]),
  ("steps", ["expected key=value"]),
])
def test_bad_overrides_name_the_problem(item, words):
  with pytest.raises(ConfigError) as e:
    config.apply_overrides(Cfg(), [item])
  for w in words:
    assert w in str(e.value)


def test_diff_and_roundtrip():
  a = config.to_dict(Cfg())
  b = config.to_dict(config.apply_overrides(Cfg(), ["opt.lr=0.2", "steps=4"]))
  assert a["widths"] == [1, 2]
  assert config.diff(a, b) == ["opt.lr: 0.1 -> 0.2", "steps: 10 -> 4"]
  assert config.diff(a, a) == []


def test_resume_check_accepts_non_finite_values(tmp_path):
  from jaxlab.core import experiment
  from jaxlab.core.metrics import write_json

  saved = {"experiment": "x", "config": {"init_best": float("inf"), "lr": 0.1}}
  write_json(tmp_path / "config.json", saved)
  experiment.prepare_out_dir(tmp_path, saved, resume=True)  # no error
  with pytest.raises(ConfigError, match="config.lr: 0.1 -> 0.2"):
    experiment.prepare_out_dir(
      tmp_path, {"experiment": "x", "config": {"init_best": float("inf"), "lr": 0.2}}, resume=True
    )
