"""Hub ids ("org/name") resolved from the local Hugging Face cache, offline only."""

import os

from jaxlab.core.errors import AssetMissingError


def hub_cache_dir() -> str:
  """The HF hub cache jaxlab reads: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/..."""
  if os.environ.get("HF_HUB_CACHE"):
    return os.environ["HF_HUB_CACHE"]
  home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
  return os.path.join(home, "hub")


def resolve_hub_id(repo_id: str, revision: str = "main") -> str:
  """The snapshot directory of `repo_id` in the local HF cache (never downloads).

  Raises:
    AssetMissingError: one line naming the cache path, when the model is not cached.
  """
  from huggingface_hub import snapshot_download  # noqa: PLC0415 (optional, heavy)
  from huggingface_hub.errors import LocalEntryNotFoundError  # noqa: PLC0415

  cache = hub_cache_dir()
  try:
    path = snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
  except (LocalEntryNotFoundError, FileNotFoundError, OSError) as e:
    raise AssetMissingError(
      f"{repo_id!r} is not in the local Hugging Face cache {cache} (jaxlab never downloads); "
      f"fetch it elsewhere with `hf download {repo_id}` and copy the cache, or pass a "
      "checkpoint directory.") from e
  if not os.path.exists(os.path.join(path, "config.json")):
    raise AssetMissingError(f"{repo_id!r} in the HF cache {cache} has no config.json at "
                            f"{path}; it is not a complete decoder checkpoint.")
  return path
