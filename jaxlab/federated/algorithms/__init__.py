"""Baseline federated algorithms; each accepts a method ``Plugin``."""

from jaxlab.federated.algorithms.base import Hooks, build, client_sgd
from jaxlab.federated.algorithms.fedavg import fedavg
from jaxlab.federated.algorithms.fednova import fednova
from jaxlab.federated.algorithms.fedprox import fedprox
from jaxlab.federated.algorithms.scaffold import scaffold

ALGORITHMS = {"fedavg": fedavg, "fedprox": fedprox, "scaffold": scaffold, "fednova": fednova}

__all__ = ["ALGORITHMS", "Hooks", "build", "client_sgd", "fedavg", "fednova", "fedprox",
           "scaffold"]
