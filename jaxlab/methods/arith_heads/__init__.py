"""Interpreting and Improving LLMs in Arithmetic Calculation (Zhang et al., ICML 2024).

Dataset builder (`data`), side-effect corpora (`corpus`), study stages (`study`,
`tune`), and the experiment glue (`experiment`). See docs/arith_heads.md.
"""

from jaxlab.methods.arith_heads.config import Config
from jaxlab.methods.arith_heads.data import ArithSet, build, operand_pairs

__all__ = ["ArithSet", "Config", "build", "operand_pairs"]
