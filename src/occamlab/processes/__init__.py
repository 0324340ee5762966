"""Stochastic processes and computational mechanics (numpy/scipy only).

Presentations (labeled transition matrices ``T[x][i, j] = Pr(x, j | i)``), a library of named
processes, mixed-state presentations, epsilon-machines, exact measures (``C_mu``, ``h_mu``, ``E``,
crypticity), minimal generators and seeded sampling with belief states. See ``docs/processes.md``.
"""

from occamlab.processes._compare import CompareResult, compare, lohr_crossover, lohr_entropy
from occamlab.processes._cryptic import cryptic_order
from occamlab.processes._divergence import kl_divergence_rate, markov_chain
from occamlab.processes._entropy_rate import (
    EntropyRateEstimate,
    entropy_rate_bounds,
    estimate_entropy_rate,
)
from occamlab.processes._epsilon import (
    causal_state_analysis,
    epsilon_machine,
    spectral_excess_entropy,
)
from occamlab.processes._generator_map import GeneratorMap, generator_map
from occamlab.processes._generators import GeneratorResult, minimal_generator
from occamlab.processes._infer import InferenceResult, infer
from occamlab.processes._info import ProcessInfo, analyze, block_entropies
from occamlab.processes._library import (
    PROCESSES,
    ProcessList,
    build_process,
    list_processes,
    load_presentation,
    save_presentation,
)
from occamlab.processes._minimize import refine_partition
from occamlab.processes._mixed_state import MixedStateGraph, mixed_state_graph
from occamlab.processes._presentation import Presentation, entropy_bits
from occamlab.processes._sampling import SampleFile, Samples, sample, save_samples
from occamlab.processes._symbols import load_symbols

__all__ = [
    "Presentation", "entropy_bits", "PROCESSES", "build_process", "load_presentation",
    "MixedStateGraph", "mixed_state_graph", "refine_partition", "causal_state_analysis", "epsilon_machine",
    "spectral_excess_entropy", "ProcessInfo", "analyze", "block_entropies",
    "cryptic_order", "GeneratorResult", "minimal_generator", "GeneratorMap", "generator_map", "CompareResult", "compare", "lohr_entropy",
    "lohr_crossover", "EntropyRateEstimate", "estimate_entropy_rate", "entropy_rate_bounds", "Samples", "sample",
    "SampleFile", "save_samples", "ProcessList", "list_processes", "InferenceResult", "infer",
    "load_symbols", "save_presentation", "markov_chain", "kl_divergence_rate",
]
