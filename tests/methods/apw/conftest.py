"""Makes ``apw_helpers`` (small logistic data, the sklearn reference fit) importable under
--import-mode=importlib."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
