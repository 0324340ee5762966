"""occamlab: a toolkit for the empirical science of learning.

Four independent libraries, each importable on its own:

- :mod:`occamlab.scaling`   scaling-law forms, robust fitting, uncertainty, extrapolation checks;
- :mod:`occamlab.processes` stochastic processes and computational mechanics;
- :mod:`occamlab.slt`       local learning coefficient, compression, two-part codes;
- :mod:`occamlab.train`     small transformers on a CPU, fine-tuning and LoRA.

Importing :mod:`occamlab` itself imports none of them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
