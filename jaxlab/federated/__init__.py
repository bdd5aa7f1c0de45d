"""Federated simulation: vmapped/sharded clients, baselines, plug-ins.

See docs/federated.md for the API (FedAlgorithm, Plugin, Sweep, fl.runs, persistent client
state).
"""

from jaxlab.federated import (aggregate, algorithms, eval, host_table, loop, packed, partition,
                              phases, plugins, pool, runs, schedule, sequential, shard,
                              stepped, stream, sweep)
from jaxlab.federated.algorithms import client_sgd
from jaxlab.federated.data import make_fed_data
from jaxlab.federated.engine import Engine, EngineConfig, clients_mesh, client_update, init_sim
from jaxlab.federated.sampling import sample_clients
from jaxlab.federated.sweep import Sweep
from jaxlab.federated.types import (ClientCarry, ClientMeta, FedAlgorithm, FedData, Model,
                                    Owned, Phase, Plugin, RoundInputs, Sampler, ServerState,
                                    SimState)

__all__ = [
  "ClientCarry", "ClientMeta", "Engine", "EngineConfig", "FedAlgorithm", "FedData", "Model",
  "Owned", "Phase", "Plugin", "RoundInputs", "Sampler", "ServerState", "SimState", "Sweep",
  "aggregate", "algorithms", "client_sgd", "client_update", "clients_mesh", "eval", "init_sim",
  "loop", "make_fed_data", "packed", "partition", "phases", "plugins", "pool", "runs",
  "sample_clients", "host_table", "schedule", "sequential", "shard", "stepped", "stream", "sweep",
]
