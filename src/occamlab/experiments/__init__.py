"""Experiments: the only place where occamlab's libraries meet. One module per experiment, each with
a frozen ``Config`` dataclass and ``run(config, run_dir) -> RunOutput`` (the contract:
:mod:`occamlab.experiments._registry`); the command line and sweeps call the same functions.

Sweeps (docs/experiments.md)::

    from occamlab.experiments import load_spec, run_sweep
    spec = load_spec("configs/sweep-smoke.toml")
    result = run_sweep(spec.resolve(), "sweep-store", jobs=2)
    result = run_sweep(spec.resolve(), "sweep-store", jobs=2, backend="ray")  # occamlab[ray]
"""

from ._backends import BACKENDS, check_backend, make_backend
from ._execute import (
    THREAD_ENV,
    Backend,
    InlineBackend,
    LocalBackend,
    Outcome,
    RunTimeout,
    Task,
    execute,
)
from ._ledger import LedgerSummary, PriceTable, ledger_summary, load_prices
from ._mlflow import MlflowLogger, import_mlflow
from ._ray import RayBackend, import_ray
from ._registry import (
    EXPERIMENTS,
    Experiment,
    RunOutput,
    config_keys,
    config_types,
    get_experiment,
    register_experiment,
)
from ._remote import check_remote_ready, confirm_remote, prepare_store, resolve_prices, sweep_plan
from ._spec import PlannedRun, SweepSpec, expand_values, load_spec, parse_spec, plan_run
from ._suite import SUITE, DemoResult, build_report, run_demo
from ._sweep import BackendError, Progress, SweepResult, plan_table, run_sweep

__all__ = [
    "BACKENDS",
    "SUITE",
    "DemoResult",
    "build_report",
    "run_demo",
    "Backend",
    "BackendError",
    "RunOutput",
    "check_backend",
    "EXPERIMENTS",
    "Experiment",
    "InlineBackend",
    "MlflowLogger",
    "LocalBackend",
    "Outcome",
    "PlannedRun",
    "RayBackend",
    "Progress",
    "RunTimeout",
    "SweepResult",
    "SweepSpec",
    "THREAD_ENV",
    "Task",
    "config_keys",
    "config_types",
    "execute",
    "expand_values",
    "get_experiment",
    "import_mlflow",
    "import_ray",
    "load_spec",
    "make_backend",
    "parse_spec",
    "plan_run",
    "plan_table",
    "register_experiment",
    "run_sweep",
    "LedgerSummary",
    "PriceTable",
    "check_remote_ready",
    "confirm_remote",
    "ledger_summary",
    "load_prices",
    "prepare_store",
    "resolve_prices",
    "sweep_plan",
]
