"""The ``noop`` experiment: does (almost) nothing. For measuring scheduling overhead and tests.

``x`` and ``y`` are free parameters to sweep over; the result is ``{"value": x + y, "seed":
seed}``. ``sleep`` seconds are spent before returning (time-limit tests); a non-empty ``fail``
raises that message; ``flaky`` names a file: the first run that finds it missing creates it and
fails, later runs succeed (retry tests); ``log`` names a file to which each completed run appends
one line (counting executions across processes); ``crash = true`` ends the process at once
(``os._exit``), as a worker killed by the system would.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError, suggest

__all__ = ["Config", "make_config", "run"]


@dataclass(frozen=True)
class Config:
    seed: int = 0
    x: float = 0.0
    y: float = 0.0
    sleep: float = 0.0
    fail: str = ""
    flaky: str = ""
    log: str = ""
    crash: bool = False

    def __post_init__(self) -> None:
        if self.sleep < 0:
            raise ConfigError(f"sleep must be >= 0, got {self.sleep!r}")


def make_config(d: dict[str, Any]) -> Config:
    names = {f.name: f.type for f in fields(Config)}
    kwargs: dict[str, Any] = {}
    for k, v in d.items():
        if k not in names:
            raise ConfigError(f"unknown config key {k!r}{suggest(k, names)}; "
                              f"allowed: {', '.join(names)}")
        tp = names[k]
        ok = (isinstance(v, str) if tp == "str" else isinstance(v, bool) if tp == "bool" else
              isinstance(v, int) and not isinstance(v, bool) if tp == "int" else
              isinstance(v, int | float) and not isinstance(v, bool))
        if not ok:
            raise ConfigError(f"{k} must be of type {tp}, got {v!r}")
        kwargs[k] = float(v) if tp == "float" else v
    return Config(**kwargs)


def run(config: Config, run_dir: Path) -> dict[str, Any]:
    if config.sleep:
        time.sleep(config.sleep)
    if config.crash:
        os._exit(3)
    if config.fail:
        raise RuntimeError(config.fail)
    if config.flaky:
        marker = Path(config.flaky)
        if not marker.exists():
            marker.write_text("failed once\n")
            raise RuntimeError("flaky: first attempt fails")
    if config.log:
        with open(config.log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"x": config.x, "y": config.y, "seed": config.seed}) + "\n")
    with open(Path(run_dir) / "metrics.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"step": 0, "value": config.x + config.y}) + "\n")
    return {"value": config.x + config.y, "seed": config.seed}
