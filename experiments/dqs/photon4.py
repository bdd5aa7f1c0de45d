"""dqs-4photon: the quick DQS reproduction at N = 4 (<= 5 min on 2 CPU cores)."""

import pathlib

from jaxlab.methods.dqs import pipeline
from jaxlab.methods.dqs.config import SimConfig
from jaxlab.methods.dqs.estimator import EstimatorConfig
from jaxlab.methods.dqs.predictor import PredictorConfig

DESCRIPTION = "DQS at 4 photons: GNN QFI predictor vs MLP, guided vs random search, estimator"
CLAIM = (
  "DQS (arXiv 2311.07203): a GNN trained offline predicts the QFI of an optical setup, the"
  " predictor finds Heisenberg-limit (QFI = N^2) setups, and trigonometric interpolation"
  " estimates the phase at Heisenberg scaling. Checks (small offline reproduction, env Z,"
  " clean split): GNN test R^2 vs the MLP baseline; fraction of verified setups at HL for"
  " predictor-guided vs equal-budget random search (reconstructed); estimator MSE / (1/(N^2 S))"
  " (reconstructed)."
)


def get_config(smoke: bool = False) -> pipeline.DqsExperimentConfig:
  if smoke:
    return pipeline.DqsExperimentConfig(
      sim=SimConfig(n_photons=4),
      gnn=PredictorConfig(hidden=16, num_layers=0, heads=2, epochs=1, lr=1e-3,
                          init_best=1e30),
      mlp=PredictorConfig(model="mlp", mlp_hidden=16, epochs=1, lr=1e-3, init_best=1e30),
      n_setups=400, chunk_size=200, n_train=256, n_val=64, n_test=64,
      search_candidates=200, search_budget=8, search_repeats=1, search_matched_max_setups=4096,
      estimator=EstimatorConfig(reps=50), est_photons=(4,), est_shots=(100,),
    )
  return pipeline.DqsExperimentConfig(
    sim=SimConfig(n_photons=4),
    gnn=PredictorConfig(hidden=64, num_layers=2, heads=4, epochs=16, lr=1e-3, eval_every=3,
                        init_best=1e30),
    mlp=PredictorConfig(model="mlp", epochs=16, lr=1e-3, eval_every=3, init_best=1e30),
    n_setups=8000, chunk_size=1000, n_train=5000, n_val=1000, n_test=2000,
    search_candidates=4000, search_budget=40, search_repeats=5,
    search_matched_max_setups=2_000_000,
    estimator=EstimatorConfig(reps=1000), est_photons=(2, 4, 6, 8),
  )


def run(config: pipeline.DqsExperimentConfig, out_dir: pathlib.Path) -> dict:
  return pipeline.run(config, out_dir)


def report(result: dict) -> str:
  from jaxlab.methods.dqs.report import markdown

  return markdown(result)
