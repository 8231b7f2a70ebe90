"""What a run costs: a price per hour of hardware, energy, and cost to a target accuracy.

Two ways to price a run (a :class:`PriceBasis`):

* **electricity** (default): the energy the run used (measured by RAPL/NVML where possible,
  else :data:`~costtrain.advice.energy.LAPTOP_WATTS` x wall time) at :data:`PRICE_PER_KWH`;
* **instance**: an on-demand cloud machine billed per second from :data:`INSTANCES`.

Prices change. The table below was compiled in :data:`PRICES_COMPILED` from the providers'
public on-demand list prices (Linux, US regions) and is only a starting point: pass your own
``--price-per-kwh``/``--watts``, or a JSON/TOML file (``prices=`` argument or the
``COSTTRAIN_PRICES`` environment variable) such as::

    {"electricity": {"usd_per_kwh": 0.31, "watts": 60},
     "instances": {"my-box": {"usd_per_hour": 0.05, "vcpus": 8, "gpu": null}}}
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..result import RunResult
from ..utils import CosttrainError, positive
from .energy import LAPTOP_WATTS, EnergyReading, estimate

PRICE_PER_KWH = 0.20  # USD per kWh: roughly a US/EU household tariff in 2026; set your own
CURRENCY = "USD"
PRICES_COMPILED = "2026-11"
PRICES_ENV = "COSTTRAIN_PRICES"

# On-demand list prices, Linux, us-east-1 (AWS) / us-central1 (GCP), compiled 2026-11.
INSTANCES: dict[str, dict[str, Any]] = {
    "aws-c7i.large": {"usd_per_hour": 0.0893, "vcpus": 2, "gpu": None},
    "aws-c7i.xlarge": {"usd_per_hour": 0.1785, "vcpus": 4, "gpu": None},
    "aws-c7i.4xlarge": {"usd_per_hour": 0.714, "vcpus": 16, "gpu": None},
    "aws-g4dn.xlarge": {"usd_per_hour": 0.526, "vcpus": 4, "gpu": "NVIDIA T4"},
    "aws-g5.xlarge": {"usd_per_hour": 1.006, "vcpus": 4, "gpu": "NVIDIA A10G"},
    "gcp-e2-standard-4": {"usd_per_hour": 0.134, "vcpus": 4, "gpu": None},
    "gcp-g2-standard-4": {"usd_per_hour": 0.707, "vcpus": 4, "gpu": "NVIDIA L4"},
}


@dataclass(frozen=True)
class PriceBasis:
    """How a run is priced: electricity (energy x $/kWh) or an instance ($/h x wall time)."""

    name: str  # 'electricity' or an instance name
    usd_per_hour: float | None = None  # instances
    usd_per_kwh: float | None = None  # electricity
    watts: float = LAPTOP_WATTS  # power draw for energy estimates
    compiled: str = PRICES_COMPILED

    @property
    def is_instance(self) -> bool:
        return self.usd_per_hour is not None

    def cost(self, seconds: float, joules: float) -> float:
        """Cost in USD of `seconds` of wall time that used `joules` of energy."""
        if self.is_instance:
            return self.usd_per_hour * seconds / 3600
        return self.usd_per_kwh * joules / 3.6e6

    def describe(self) -> str:
        if self.is_instance:
            return (f"{self.name} on demand at ${self.usd_per_hour:g}/h (list price "
                    f"{self.compiled}; prices change)")
        return f"electricity at ${self.usd_per_kwh:g}/kWh"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"description": self.describe()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriceBasis:
        """The basis :meth:`to_dict` wrote."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    """The default price table updated from a JSON/TOML file (`path`, else ``$COSTTRAIN_PRICES``)."""
    table = {"electricity": {"usd_per_kwh": PRICE_PER_KWH, "watts": LAPTOP_WATTS},
             "instances": {k: dict(v) for k, v in INSTANCES.items()}}
    path = path or os.environ.get(PRICES_ENV)
    if not path:
        return table
    p = Path(path)
    try:
        text = p.read_text()
        if p.suffix == ".toml":
            import tomllib
            user = tomllib.loads(text)
        else:
            user = json.loads(text)
    except FileNotFoundError:
        raise CosttrainError(f"price file {p} not found (from the argument or ${PRICES_ENV}).") from None
    except Exception as exc:
        raise CosttrainError(f"cannot read price file {p}: {exc}. Expected JSON or TOML with "
                             "'electricity' and/or 'instances' tables.") from None
    if not isinstance(user, dict) or not set(user) <= {"electricity", "instances"}:
        raise CosttrainError(f"price file {p} may only hold 'electricity' and 'instances' tables.")
    table["electricity"].update(user.get("electricity", {}))
    table["instances"].update(user.get("instances", {}))
    return table


def price_basis(instance: str | None = None, *, watts: float | None = None,
                price_per_kwh: float | None = None,
                prices: str | Path | None = None) -> PriceBasis:
    """The price basis: electricity by default, or a named instance from the price table."""
    table = load_prices(prices)
    elec = table["electricity"]
    watts = float(elec["watts"] if watts is None else watts)
    kwh = float(elec["usd_per_kwh"] if price_per_kwh is None else price_per_kwh)
    positive(watts, "watts")
    positive(kwh, "price per kWh")
    if instance is None:
        return PriceBasis("electricity", usd_per_kwh=kwh, watts=watts)
    inst = table["instances"].get(instance)
    if inst is None:
        raise CosttrainError(f"unknown instance {instance!r}; known: "
                             f"{', '.join(sorted(table['instances']))} (add yours in a price "
                             f"file, see ${PRICES_ENV}).")
    return PriceBasis(instance, usd_per_hour=float(inst["usd_per_hour"]), watts=watts)


def as_fraction(target: float | None) -> float | None:
    """A target accuracy as a fraction: 0.8 and 80 (percent) both mean 80 %."""
    if target is None:
        return None
    t = float(target)
    if 1 < t <= 100:
        t /= 100
    if not 0 < t <= 1:
        raise CosttrainError(f"target accuracy must be in (0, 1] or a percentage, got {target!r}.")
    return t


def time_to_target(result: RunResult, target: float) -> dict[str, float] | None:
    """When held-out accuracy first reached `target`, or None if it never did.

    ``wall_seconds`` = one-off set-up seconds + training seconds at which the test accuracy
    reached the target, interpolated linearly between the two evaluations around it
    (:func:`costtrain.measure.time_to_accuracy`; periodic evaluation time is not included).
    The accuracies are the intermediate evaluations', read on the fixed slice of the test set
    (``result.extra['eval_slice']``), then the final one on the whole set.
    """
    from ..measure import time_to_accuracy
    seconds, samples = time_to_accuracy(result.eval_curve, as_fraction(target))
    if seconds is None:
        return None
    return {"wall_seconds": result.setup_seconds + seconds, "train_seconds": seconds,
            "samples": samples}


def money(x: float | None) -> str:
    """``$0.12`` or, for fractions of a cent, two significant digits: ``$0.00013``."""
    if x is None:
        return "-"
    if x >= 0.01 or x <= 0:
        return f"${x:,.2f}"
    return f"${x:.{1 - math.floor(math.log10(x))}f}"


def attach_cost(result: RunResult, *, target_accuracy: float | None = None,
                basis: PriceBasis | None = None,
                energy: EnergyReading | None = None) -> dict[str, Any]:
    """Fill ``result.cost`` with energy, cost of the run and cost to a target accuracy.

    Args:
        target_accuracy: e.g. 0.8 or 80; needs the run's ``eval_curve`` (``eval_every``).
        basis: how to price (default: :func:`price_basis`, electricity).
        energy: an :class:`~costtrain.advice.energy.EnergyMeter` reading of the run; without one the
            energy already in ``result.cost`` is kept (re-pricing, e.g. for a new target),
            else it is estimated as ``basis.watts`` x the run's set-up + train + eval seconds.
    """
    basis = basis or price_basis()
    old = result.cost
    if energy is None and "energy_joules" in old:
        energy = EnergyReading(old["energy_joules"], old["seconds"], old["energy_source"])
    energy = energy or estimate(result.total_seconds, basis.watts)
    target = as_fraction(target_accuracy)
    hit = time_to_target(result, target) if target is not None else None
    to_target = basis.cost(hit["wall_seconds"], energy.average_watts * hit["wall_seconds"]) if hit else None
    c = {"energy_joules": energy.joules, "energy_source": energy.source,
         "average_watts": energy.average_watts, "seconds": energy.seconds,
         "cost": basis.cost(energy.seconds, energy.joules), "currency": CURRENCY,
         "target_accuracy": target,
         "time_to_target_seconds": hit["wall_seconds"] if hit else None,
         "samples_to_target": hit["samples"] if hit else None,
         "cost_to_target": to_target, "price_basis": basis.to_dict()}
    c["summary"] = _summary(c, basis)
    result.cost = c
    return c


def _summary(c: dict[str, Any], basis: PriceBasis) -> str:
    text = (f"{money(c['cost'])} for {c['seconds']:.1f} s ({basis.describe()}); energy "
            f"{c['energy_joules']:,.0f} J ({c['energy_source']})")
    if c["target_accuracy"] is not None:
        pct = f"{100 * c['target_accuracy']:g} %"
        text += (f"; to {pct} accuracy: {c['time_to_target_seconds']:.1f} s wall (set-up + "
                 f"training), {money(c['cost_to_target'])}" if c["cost_to_target"] is not None
                 else f"; {pct} accuracy not reached")
    return text


COST_HEADERS = ("run", "wall s", "energy J", "energy source", "cost", "to target s",
                "cost to target")


def cost_table(results: list[RunResult]) -> str:
    """One row per result with cost fields (:func:`attach_cost`): energy, cost, cost to target."""
    from .report import format_table
    rows = []
    for r in results:
        c = r.cost
        if not c:
            rows.append([r.label] + [None] * 6)
            continue
        to = c.get("time_to_target_seconds")
        rows.append([r.label, round(c["seconds"], 2), round(c["energy_joules"]),
                     c["energy_source"].split(" x ")[0], money(c["cost"]),
                     None if to is None else round(to, 2),
                     money(c["cost_to_target"]) if to is not None
                     else ("not reached" if c.get("target_accuracy") is not None else None)])
    return format_table(rows, COST_HEADERS)
