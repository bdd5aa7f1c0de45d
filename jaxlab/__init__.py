"""jaxlab: ten recent papers as pure, composable JAX functions."""

__version__ = "0.1.0"
