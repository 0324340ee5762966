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
from dataclasses import dataclass
from pathlib import Path

from occamlab.errors import ConfigError, check_seed

from ._registry import RunOutput

__all__ = ["Config", "run"]


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
        check_seed(self.seed)
        if self.sleep < 0:
            raise ConfigError(f"sleep must be >= 0, got {self.sleep!r}")


def run(config: Config, run_dir: Path) -> RunOutput:
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
    return RunOutput({"value": config.x + config.y, "seed": config.seed})
