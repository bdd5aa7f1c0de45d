"""Self-consuming generative loops (Fu et al., ICML 2024): a simulation lab.

References:
  Shi Fu, Sen Zhang, Yingjie Wang, Xinmei Tian, Dacheng Tao. "Towards
  Theoretical Understandings of Self-Consuming Generative Models", ICML 2024,
  PMLR 235:14228-14255, arXiv:2402.11778.

The paper's theorem constants are not verified here: every bound jaxlab draws
is its own "scaffold bound" (see `bound.py`), never Fu et al.'s theorem.
"""

from jaxlab.methods.self_consuming.config import Config, Mixture
from jaxlab.methods.self_consuming.distances import tv_gaussians_1d, tv_grid
from jaxlab.methods.self_consuming.learners import Learner, gaussian_mle, kde
from jaxlab.methods.self_consuming.loops import make_loop, run_sweep

__all__ = [
  "Config", "Learner", "Mixture", "gaussian_mle", "kde", "make_loop", "run_sweep",
  "tv_gaussians_1d", "tv_grid",
]
