"""The run ledger: tokens trained, sampled and evaluated, and what they cost at a price table.

Every ``lora-finetune`` run records ``tokens_trained``, ``tokens_sampled`` and
``tokens_evaluated`` in its result (all its attempts counted). A service's bill is not assumed to
be queryable, so the cost is computed here from a price table the user gives: a TOML file ::

    currency = "USD"                        # optional, the unit of every price
    [models."meta-llama/Llama-3.2-1B"]      # per million tokens
    train = 0.09
    sample = 0.09
    evaluate = 0.03                         # forward-only passes (the service's "prefill")
    [models."*"]                            # any other model (optional)
    train = 1.0

``occam sweep --prices FILE`` (or ``prices = "FILE"`` in the spec) keeps a copy of it in the
store (``STORE/prices.json``), which ``occam runs ls`` and ``occam report`` then use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from occamlab._io import atomic_write_json
from occamlab._render import Rendered, Table, fmt
from occamlab.errors import ConfigError, DataError

__all__ = ["PRICE_KEYS", "PriceTable", "LedgerSummary", "load_prices", "stored_prices",
           "save_prices", "ledger_summary", "PRICES_FILE"]

PRICES_FILE = "prices.json"
# price key -> ledger key
PRICE_KEYS = {"train": "tokens_trained", "sample": "tokens_sampled",
              "evaluate": "tokens_evaluated"}


@dataclass(frozen=True)
class PriceTable:
    """Prices per million tokens, by base model (``*``: any other), in ``currency``."""

    models: Mapping[str, Mapping[str, float]]
    currency: str = "USD"

    def rates(self, base_model: str) -> Mapping[str, float] | None:
        return self.models.get(base_model, self.models.get("*"))

    def cost(self, ledger: Mapping[str, Any], base_model: str) -> float | None:
        """The cost of ``ledger``'s tokens for ``base_model``; ``None`` without a price."""
        rates = self.rates(base_model)
        if rates is None:
            return None
        return sum(float(rates.get(k, 0.0)) * float(ledger.get(v) or 0) / 1e6
                   for k, v in PRICE_KEYS.items())

    def to_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "models": {m: dict(r) for m, r in self.models.items()}}


def _check(doc: Any, source: str) -> PriceTable:
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{source}: a price table is a TOML table")
    extra = set(doc) - {"currency", "models"}
    if extra:
        raise ConfigError(f"{source}: unknown key {sorted(extra)[0]!r}; allowed: currency, models")
    models = doc.get("models")
    if not isinstance(models, Mapping) or not models:
        raise ConfigError(f"{source}: [models.\"NAME\"] tables of prices per million tokens "
                          f"({', '.join(PRICE_KEYS)}) are required")
    out: dict[str, dict[str, float]] = {}
    for name, rates in models.items():
        if not isinstance(rates, Mapping):
            raise ConfigError(f"{source}: models.{name!r} must be a table of prices")
        for k, v in rates.items():
            if k not in PRICE_KEYS:
                raise ConfigError(f"{source}: models.{name!r}: unknown price {k!r}; allowed: "
                                  f"{', '.join(PRICE_KEYS)}")
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigError(f"{source}: models.{name!r}.{k} must be a price >= 0, got {v!r}")
        out[str(name)] = {k: float(v) for k, v in rates.items()}
    return PriceTable(out, str(doc.get("currency", "USD")))


def load_prices(spec: str | Path | Mapping[str, Any]) -> PriceTable:
    """A price table from a TOML file (or an already parsed mapping)."""
    if isinstance(spec, Mapping):
        return _check(spec, "prices")
    from occamlab._config import read_toml

    return _check(read_toml(spec, what="price table"), str(spec))


def stored_prices(root: str | Path) -> PriceTable | None:
    """The price table kept in a store (``STORE/prices.json``), if any."""
    import json

    p = Path(root) / PRICES_FILE
    try:
        return _check(json.loads(p.read_text(encoding="utf-8")), str(p))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise DataError(f"{p}: not a price table ({exc})") from None


def save_prices(root: str | Path, table: PriceTable) -> None:
    atomic_write_json(Path(root) / PRICES_FILE, table.to_dict())


@dataclass(frozen=True)
class LedgerSummary(Rendered):
    """Tokens trained, sampled and evaluated per run and in all, with their cost at ``prices``
    (``currency`` per million tokens; a cost is ``None`` where no price applies)."""

    runs: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    totals: dict[str, Any] = field(default_factory=dict)
    currency: str | None = None

    def _tables(self) -> list[Table]:
        cur = self.currency or "-"
        rows = [[r["id"], r["base_model"], r["status"], r["tokens_trained"], r["tokens_sampled"],
                 r["tokens_evaluated"], "" if r["cost"] is None else fmt(r["cost"])]
                for r in self.runs]
        t = self.totals
        rows.append(["total", "", "", t.get("tokens_trained", 0), t.get("tokens_sampled", 0),
                     t.get("tokens_evaluated", 0),
                     "" if t.get("cost") is None else fmt(t["cost"])])
        notes = ([f"cost at the price table given ({cur} per million tokens)"]
                 if self.currency else ["no price table given: tokens only (--prices FILE)"])
        if t.get("unpriced"):
            notes.append(f"{t['unpriced']} runs have no price for their base model (left out "
                         "of the cost)")
        return [Table("Ledger: tokens and cost", ["run", "base model", "status", "trained",
                                                   "sampled", "evaluated", f"cost ({cur})"],
                      rows, notes)]


def _attempt_ledger(record: Any) -> dict[str, Any]:
    """A run without a result (failed, or stopped) may have billed tokens: its attempts' ledger
    in ``STORE/states/<id>/ledger.json``, with the base model from its config."""
    import json

    folder = Path(getattr(record, "folder", "") or "")
    if not folder.name:
        return {}
    try:
        doc = json.loads((folder.parent.parent / "states" / folder.name / "ledger.json")
                         .read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {**doc, "base_model": (record.config or {}).get("base_model", "")}


def ledger_summary(records: Sequence[Any], prices: PriceTable | None = None) -> LedgerSummary:
    """The ledger of the runs among ``records`` that have one (a ``tokens_trained`` result)."""
    rows = []
    for r in records:
        res = r.result or _attempt_ledger(r)
        if "tokens_trained" not in res:
            continue
        model = str(res.get("base_model", ""))
        ledger = {v: int(res.get(v) or 0) for v in PRICE_KEYS.values()}
        cost = prices.cost(ledger, model) if prices is not None else None
        rows.append({"id": r.id, "base_model": model, "status": r.status, **ledger,
                     "cost": cost})
    totals: dict[str, Any] = {v: sum(r[v] for r in rows) for v in PRICE_KEYS.values()}
    costs = [r["cost"] for r in rows if r["cost"] is not None]
    totals["cost"] = sum(costs) if prices is not None and costs else None
    totals["unpriced"] = sum(r["cost"] is None for r in rows) if prices is not None else 0
    return LedgerSummary(tuple(rows), totals, prices.currency if prices is not None else None)
