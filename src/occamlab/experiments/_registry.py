"""The experiment registry: name -> module with a frozen config dataclass and ``run``.

An experiment module defines

- ``Config``: a frozen dataclass (nested dataclasses allowed), the run's whole configuration;
- ``make_config(d: dict) -> Config``: build and validate it from plain JSON (unknown keys are a
  :class:`~occamlab.errors.ConfigError` naming the nearest allowed key);
- ``run(config, run_dir) -> dict``: do the work, write any files (``run_dir/metrics.jsonl`` is
  the metrics stream) and return the result as plain JSON.

Modules are imported only when an experiment is used, so the registry costs nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from occamlab._config import config_keys, config_types
from occamlab.errors import ConfigError, suggest

__all__ = ["Experiment", "EXPERIMENTS", "get_experiment", "config_keys", "config_types",
           "register_experiment"]

EXPERIMENTS: dict[str, str] = {
    "train": "occamlab.experiments.train",
    "noop": "occamlab.experiments.noop",
}


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name and module (see the module docstring)."""

    name: str
    module: ModuleType

    def make_config(self, d: dict[str, Any]) -> Any:
        return self.module.make_config(d)

    def config_dict(self, d: dict[str, Any]) -> dict[str, Any]:
        """Validate ``d`` and return the full resolved config (defaults filled in) as JSON."""
        return dataclasses.asdict(self.make_config(d))

    def run(self, config: Any, run_dir: Any) -> dict[str, Any]:
        return dict(self.module.run(config, run_dir))

    def keys(self) -> list[str]:
        """Every dotted config key (``model.d_model``) of the experiment's config."""
        return config_keys(self.module.Config)

    def types(self) -> dict[str, Any]:
        return config_types(self.module.Config)


def register_experiment(name: str, module: str) -> None:
    """Add an experiment (a module path) to the registry of this process."""
    EXPERIMENTS[name] = module


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}{suggest(name, EXPERIMENTS)}; "
                          f"registered: {', '.join(sorted(EXPERIMENTS))}")
    return Experiment(name, importlib.import_module(EXPERIMENTS[name]))
