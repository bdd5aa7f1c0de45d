"""Makes ``fed_helpers`` (tiny models and data) importable under --import-mode=importlib."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
