"""The experiment contract and its registry: name -> module.

Everything that runs in occamlab (a sweep's runs, ``occam train``, ``occam llc``, the demo) is an
*experiment*: a module of :mod:`occamlab.experiments` that defines

- ``Config``: a frozen dataclass (nested dataclasses allowed), the run's whole configuration. Its
  JSON form (``dataclasses.asdict``) is what the store hashes into the run id. A suite experiment
  (the demo's) also has ``Config.quick()`` and ``Config.full()`` presets.
- ``run(config, run_dir) -> RunOutput``: do the work, write any files into ``run_dir``
  (``run_dir/metrics.jsonl`` is the metrics stream) and return a :class:`RunOutput`, whose
  ``result`` is plain JSON (the store's ``result.json``, the columns of the index).
- optionally ``make_config(d: dict) -> Config`` when building the config needs more than
  :func:`occamlab._config.config_from_dict` (unknown keys are a :class:`ConfigError` naming the
  nearest allowed key either way).

The command line builds a ``Config`` from its arguments and calls the same functions, so a
command and a sweep of that experiment do the same work. Modules are imported only when an
experiment is used, so the registry costs nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from occamlab._config import config_from_dict, config_keys, config_types
from occamlab._render import jsonable
from occamlab.errors import ConfigError, suggest

__all__ = ["Experiment", "EXPERIMENTS", "RunOutput", "get_experiment", "config_keys",
           "config_types", "register_experiment"]

EXPERIMENTS: dict[str, str] = {
    "train": "occamlab.experiments.train",
    "finetune": "occamlab.experiments.finetune",
    "lora-finetune": "occamlab.experiments.lora_finetune",
    "llc": "occamlab.experiments.llc",
    "compress": "occamlab.experiments.compress",
    "published-fits": "occamlab.experiments.published_fits",
    "process-map": "occamlab.experiments.process_map",
    "chinchilla": "occamlab.experiments.chinchilla",
    "published": "occamlab.experiments.published",
    "pvg-probe": "occamlab.experiments.pvg_probe",
    "prediction-generation": "occamlab.experiments.prediction_generation",
    "transfer": "occamlab.experiments.transfer",
    "transfer-data": "occamlab.experiments.transfer_data",
    "evaluate": "occamlab.experiments.evaluate",
    "volume-law": "occamlab.experiments.volume_law",
    "mdl-slt": "occamlab.experiments.mdl_slt",
    "noop": "occamlab.experiments.noop",
}


@dataclass(frozen=True)
class RunOutput:
    """What one run of an experiment returns.

    ``result`` is plain JSON (numbers, strings, booleans, lists, tables; a non-finite float as
    ``None``): the store writes it to ``result.json`` and the index shows its scalars as columns.
    ``files`` names what the run wrote in its folder (paths relative to it), for readers of the
    store: a checkpoint, a full result's JSON, figures.
    """

    result: dict[str, Any]
    files: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.result, dict):
            raise TypeError(f"RunOutput.result must be a dict, got {type(self.result).__name__}")
        object.__setattr__(self, "result", jsonable(self.result))  # TypeError if not plain
        object.__setattr__(self, "files", tuple(str(f) for f in self.files))


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its name and module (see the module docstring)."""

    name: str
    module: ModuleType

    @property
    def config_class(self) -> type:
        return self.module.Config  # type: ignore[no-any-return]

    def make_config(self, d: dict[str, Any]) -> Any:
        """Build and validate the experiment's config from plain JSON."""
        own = getattr(self.module, "make_config", None)
        if own is not None:
            return own(d)
        return config_from_dict(self.config_class, d)

    def config_dict(self, d: dict[str, Any]) -> dict[str, Any]:
        """Validate ``d`` and return the full resolved config (defaults filled in) as JSON."""
        return dataclasses.asdict(self.make_config(d))

    def preset(self, size: str) -> Any:
        """The ``quick`` or ``full`` preset config of a suite experiment."""
        if size not in ("quick", "full"):
            raise ConfigError(f"unknown size {size!r}; allowed: quick, full")
        make = getattr(self.config_class, size, None)
        if make is None:
            raise ConfigError(f"experiment {self.name!r} has no {size!r} preset")
        return make()

    def run(self, config: Any, run_dir: str | Path) -> RunOutput:
        out = self.module.run(config, Path(run_dir))
        if not isinstance(out, RunOutput):
            raise TypeError(f"experiment {self.name!r}: run() returned {type(out).__name__}, "
                            "not a RunOutput")
        return out

    def keys(self) -> list[str]:
        """Every dotted config key (``model.d_model``) of the experiment's config."""
        return config_keys(self.config_class)

    def types(self) -> dict[str, Any]:
        return config_types(self.config_class)


def register_experiment(name: str, module: str) -> None:
    """Add an experiment (a module path) to the registry of this process."""
    EXPERIMENTS[name] = module


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {name!r}{suggest(name, EXPERIMENTS)}; "
                          f"registered: {', '.join(sorted(EXPERIMENTS))}")
    return Experiment(name, importlib.import_module(EXPERIMENTS[name]))
