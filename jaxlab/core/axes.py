"""Mesh axis names, defined once for the whole library."""

DATA = "data"        # data parallelism: the batch dimension
CLIENTS = "clients"  # federated clients
SWEEP = "sweep"      # hyper-parameter / seed sweeps
MODEL = "model"      # model (tensor) parallelism

ALL = (DATA, CLIENTS, SWEEP, MODEL)
