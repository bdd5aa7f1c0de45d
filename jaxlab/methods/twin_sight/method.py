"""Build Twin-sight or one of its baselines as a ``FedAlgorithm`` on the engine."""

from typing import NamedTuple

import optax

from jaxlab.core.errors import ConfigError
from jaxlab.federated import algorithms
from jaxlab.federated.types import FedAlgorithm, Plugin, Sampler
from jaxlab.methods.twin_sight import plugin as plug
from jaxlab.methods.twin_sight.augment import AugConfig
from jaxlab.methods.twin_sight.config import TwinSightConfig
from jaxlab.methods.twin_sight.model import Twin

METHODS = ("fedavg_lower", "fedavg_upper", "fedprox_lower", "fixmatch", "freematch",
           "twin_sight")


class Built(NamedTuple):
  """What :func:`make` returns: the algorithm, its plug-in and its batch sampler
  (None = the engine's default ``epoch_wrap``)."""
  algorithm: FedAlgorithm
  plugin: Plugin
  sampler: Sampler | None


def keep_owned_opt(alg: FedAlgorithm, owned_tx: optax.GradientTransformation) -> FedAlgorithm:
  """Keeps each client's owned-model optimizer state (f_u's momentum) across rounds.

  The engine re-initialises ``ClientCarry.owned_opt`` every round; Twin-sight's clients
  keep their optimizer (spec §5.3), so the state is stored in the persistent row under
  ``"owned_opt"`` (its injected hyper-parameters still come from the server).
  """
  def persist_init(server):
    return {**alg.persist_init(server), "owned_opt": owned_tx.init(server.owned)}

  def client_init(server, row, meta, key):
    carry = alg.client_init(server, row, meta, key)
    kept = row["owned_opt"]
    if hasattr(kept, "hyperparams"):
      kept = kept._replace(hyperparams=carry.owned_opt.hyperparams)
    return carry._replace(owned_opt=kept)

  def client_final(server, carry, meta):
    upload, row = alg.client_final(server, carry, meta)
    return upload, {**row, "owned_opt": carry.owned_opt}

  return alg._replace(persist_init=persist_init, client_init=client_init,
                      client_final=client_final)


def make(method: str, twin: Twin, cfg: TwinSightConfig, aug: AugConfig, *, num_clients: int,
         num_classes: int, client_tx: optax.GradientTransformation,
         owned_tx: optax.GradientTransformation | None = None, batch_size: int = 64,
         fedprox_mu: float = 0.5, prox_half: bool = False, preprocess=None,
         persist_momentum: bool = True) -> Built:
  """Twin-sight (``"twin_sight"``) or a baseline of the paper's table.

  Args:
    method: one of ``METHODS``. Lower bounds train the labeled clients only (PC: the
      unlabeled clients take 0 steps with weight 0; PD: each client's labeled part);
      the upper bound treats every client as labeled.
    twin: ``model.make_twin(...)``.
    cfg: Twin-sight settings (``cfg.setting`` picks PC or PD).
    aug: augmentation settings.
    client_tx / owned_tx: optimizers of f_s and f_u (``owned_tx`` defaults to ``client_tx``).
    fedprox_mu / prox_half: the FedProx lower bound's proximal term.
    preprocess: uint8 rows -> f32 in [0, 1] (PD sampler).
    persist_momentum: keep every client's optimizer state across rounds (reference).
  """
  if method not in METHODS:
    raise ConfigError(f"method={method!r}; use one of {', '.join(METHODS)}")
  pd = cfg.setting == "pd"
  owned_tx = owned_tx or client_tx
  if method == "twin_sight":
    plugin = plug.twin_plugin(twin, cfg, aug, num_classes, owned_tx,
                              work=plug.pd_work("ulb") if pd else None)
  else:
    ssl = method if method in ("fixmatch", "freematch") else None
    lower = method in ("fedavg_lower", "fedprox_lower")
    work = (plug.pd_work("lb") if pd else plug.labeled_only_work) if lower else (
      plug.pd_work("ulb") if pd and ssl else None)
    plugin = plug.single_plugin(twin, cfg, aug, num_classes, ssl,
                                all_labeled=method == "fedavg_upper", work=work)
  kw = dict(num_clients=num_clients, plugin=plugin, persist_opt_state=persist_momentum)
  if method == "fedprox_lower":
    alg = algorithms.fedprox(twin.model, client_tx, mu=fedprox_mu, prox_half=prox_half, **kw)
  elif method == "twin_sight" and pd:
    alg = algorithms.fedprox(twin.model, client_tx, mu=cfg.pd_prox_mu, prox_half=False, **kw)
  else:
    alg = algorithms.fedavg(twin.model, client_tx, **kw)
  if method == "twin_sight" and persist_momentum:
    alg = keep_owned_opt(alg, owned_tx)
  use_pd_sampler = pd and method != "fedavg_upper"
  sampler = plug.pd_sampler(batch_size, batch_size, preprocess) if use_pd_sampler else None
  return Built(alg, plugin, sampler)

