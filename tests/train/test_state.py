"""The training loop's state: early stopping, and the train_state.json format on disk."""

from __future__ import annotations

import json
import math

import pytest

from occamlab.errors import DataError
from occamlab.train._state import LoopState, LossCurve

# train_state.json of a checkpoint written before LoopState existed (param_groups removed by
# load_optimizer_state): these keys are the on-disk contract
OLD_STATE = {
    "step": 40,
    "best_val": 2.5,
    "best_step": 20,
    "bad_evals": 1,
    "recent": [2.75, 2.5],
    "evals": [[20, 5120, 3.0, 2.5], [40, 10240, 2.625, 2.75]],
    "train_time": 1.5,
    "stopped_early": False,
    "threads": 2,
}


def test_old_train_state_reads_and_writes_back_unchanged() -> None:
    state = LoopState.from_train_state(OLD_STATE, threads=1)
    assert state.step == 40 and state.best_val_loss == 2.5 and state.threads == 2
    assert state.evals == [(20, 5120, 3.0, 2.5), (40, 10240, 2.625, 2.75)]
    assert state.to_train_state() == OLD_STATE
    assert list(state.to_train_state()) == list(OLD_STATE)  # same key order in the file
    json.dumps(state.to_train_state(), allow_nan=False)


def test_no_best_yet_is_null_and_threads_default() -> None:
    fresh = LoopState(threads=1)
    assert fresh.to_train_state()["best_val"] is None  # JSON has no infinity
    old = {k: v for k, v in OLD_STATE.items() if k != "threads"} | {"best_val": None}
    state = LoopState.from_train_state(old, threads=3)
    assert state.best_val_loss == math.inf and state.threads == 3


def test_malformed_train_state_is_a_data_error() -> None:
    with pytest.raises(DataError, match="train_state.json"):
        LoopState.from_train_state({"step": 3}, threads=1)


def test_record_eval_keeps_the_best_and_stops_after_patience() -> None:
    state = LoopState(threads=1)
    for loss in (3.0, 2.0):
        state.record_loss(loss, window=2)
    assert state.recent == [3.0, 2.0] and state.train_loss == 2.5
    state.record_loss(1.0, window=2)
    assert state.recent == [2.0, 1.0] and state.step == 3
    assert state.record_eval(96, 2.0, patience=2)
    assert (state.best_val_loss, state.best_step, state.evals[-1]) == (2.0, 3, (3, 96, 1.5, 2.0))
    assert not state.record_eval(96, 2.0, patience=2)  # equal is not better
    assert not state.stopped_early
    assert not state.record_eval(96, 2.1, patience=2)
    assert state.stopped_early and state.bad_evals == 2


def test_loss_curve_drops_lines_after_the_checkpoint(tmp_path) -> None:
    path = tmp_path / "run" / "loss_curve.jsonl"
    curve = LossCurve(path)
    for step in (1, 2, 3):
        curve.write({"step": step, "loss": 1.0})
    curve.close()
    resumed = LossCurve(path, keep_until=2)
    resumed.write({"step": 3, "loss": 0.5})
    resumed.close()
    assert [json.loads(s) for s in path.read_text().splitlines()] == [
        {"step": 1, "loss": 1.0}, {"step": 2, "loss": 1.0}, {"step": 3, "loss": 0.5}
    ]
    LossCurve(None).write({"step": 1})  # no run directory: nothing is written
