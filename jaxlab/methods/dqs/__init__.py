"""DQS: optical quantum sensing with a GNN QFI predictor (arXiv:2311.07203).

Modules: ``config`` (constants, `SimConfig`), ``setups`` (padded setup arrays,
the reference's random distribution), ``permanent`` (Ryser/Glynn),
``simulator`` (mode unitaries, permanents, post-selection), ``environments``
(Hamiltonians, QFI, bounds), ``dataset`` (chunked resumable generation),
``graphs`` (circuit DAGs), ``predictor``/``train`` (GNN and MLP baseline),
``search`` (guided vs random), ``estimator`` (trigonometric interpolation),
``pipeline`` (the experiment). See docs/dqs.md.
"""

from jaxlab.methods.dqs.config import SimConfig
from jaxlab.methods.dqs.setups import Setups, sample_setups
from jaxlab.methods.dqs.simulator import SimResult, simulate

__all__ = ["Setups", "SimConfig", "SimResult", "sample_setups", "simulate"]
