"""Linen modules. Classifiers split into stages: ``model.apply(v, x, start=i, stop=j)``
runs stages ``i..j`` inclusive, so a method can cut any model into a low-level
and a high-level part that share one parameter tree."""

from jaxlab.models.cnn import CNN
from jaxlab.models.mlp import MLP
from jaxlab.models.resnet import ResNet

__all__ = ["CNN", "MLP", "ResNet"]
