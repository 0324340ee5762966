"""Before a sweep that trains on a paid service starts: its plan, prices, key and store settings.

An experiment may define ``sweep_plan(runs, configs, prices) -> Rendered`` (what the runs will
train and evaluate, in tokens, and what that costs at ``prices``) with a ``remote: bool`` field;
``occam sweep`` prints it with ``--dry-run`` (which needs no key) and, for a remote sweep, before
anything runs, then asks for confirmation (``--yes``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from occamlab.errors import ConfigError

from ._clients import write_service_settings
from ._ledger import PriceTable, load_prices, save_prices, stored_prices
from ._registry import get_experiment
from ._spec import PlannedRun

__all__ = ["sweep_plan", "resolve_prices", "check_remote_ready", "prepare_store", "confirm_remote"]


def sweep_plan(experiment: str, runs: Sequence[PlannedRun],
               prices: PriceTable | None = None) -> Any:
    """The experiment's plan of ``runs`` (``None`` for experiments without one)."""
    exp = get_experiment(experiment)
    make = getattr(exp.module, "sweep_plan", None)
    if make is None or not runs:
        return None
    return make(list(runs), [exp.make_config(r.config) for r in runs], prices)


def resolve_prices(given: str | None, spec_prices: Any = None,
                   store: str | Path | None = None) -> PriceTable | None:
    """The price table: ``--prices FILE``, else the spec's, else the store's copy, else none."""
    if given:
        return load_prices(given)
    if spec_prices is not None:
        return load_prices(spec_prices)
    if store is not None and Path(store, "store.json").exists():
        return stored_prices(store)
    return None


def check_remote_ready() -> None:
    """The SDK is installed and ``TINKER_API_KEY`` is set, or a :class:`ConfigError` saying so
    (checked before any run starts)."""
    from ._tinker import api_key, import_tinker

    import_tinker()
    api_key()


def prepare_store(store: Any, *, max_training_clients: int | None,
                  prices: PriceTable | None) -> None:
    """Record the sweep's limit of concurrent training clients and its price table in the store
    (``service.json``, ``prices.json``), where its runs, ``occam runs ls`` and ``occam report``
    find them."""
    if max_training_clients is not None:
        write_service_settings(store.root, max_training_clients=max_training_clients)
    if prices is not None:
        save_prices(store.root, prices)


def confirm_remote(plan: Any, *, yes: bool, interactive: bool, ask: Any = input) -> None:
    """A remote sweep starts only with ``--yes`` or an interactive ``y``."""
    if yes:
        return
    if not interactive:
        raise ConfigError("this sweep trains on a paid service: read the plan above and pass "
                          "--yes to start it (or --dry-run to see the plan only)")
    answer = ask(f"Start {plan.n_runs} runs on the service? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise ConfigError("not started (answer y, or pass --yes)")
