"""Experiments: the only place where occamlab's libraries meet. One module per experiment, each with a
frozen config dataclass and ``run(config)``."""
