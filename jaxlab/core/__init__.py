"""Paper-agnostic building blocks: rng, state, steps, sharding, checkpoints, config."""
