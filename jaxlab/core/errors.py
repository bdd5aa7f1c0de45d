"""Errors that say what was wrong and what to do.

The CLI prints any ``JaxlabError`` as a single line and exits with status 2.
"""


class JaxlabError(Exception):
  """Base class of every user-facing jaxlab error."""


class ConfigError(JaxlabError, ValueError):
  """A bad config key, value or experiment name."""


class DataError(JaxlabError, ValueError):
  """An unknown dataset, a bad split or malformed data."""


class AssetMissingError(DataError, FileNotFoundError):
  """A bundled asset package or file is not installed."""


class CheckpointError(JaxlabError, RuntimeError):
  """A checkpoint that cannot be restored into this run."""


class NonFiniteError(JaxlabError, FloatingPointError):
  """A loss or metric became NaN or infinite during training."""
