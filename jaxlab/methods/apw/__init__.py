"""APW: adaptive priority reweighing for fair classifiers (Hu et al., TKDD 2025).

Modules: ``data`` (cleaned fairness tables), ``logreg`` (sklearn-equivalent weighted
LR in JAX), ``learners`` (LR / MLP), ``reweigh`` (the released update rules and
Kamiran-Calders), ``metrics`` (accuracy, ΔEOp, ΔEO, ΔDP), ``loop`` (the T-iteration
loop vmapped over eta x seeds), ``experiment`` and ``plots``. See docs/apw.md.
"""

from jaxlab.methods.apw.data import FairData
from jaxlab.methods.apw.loop import APWConfig, baselines, run_sweep
from jaxlab.methods.apw.metrics import fairness

__all__ = ["APWConfig", "FairData", "baselines", "fairness", "run_sweep"]
