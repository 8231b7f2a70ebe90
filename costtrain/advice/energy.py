"""Energy a run used: measured (Linux RAPL, NVIDIA NVML) where the machine allows, else estimated.

* **RAPL** (``/sys/class/powercap/intel-rapl:N/energy_uj``; AMD CPUs use the same names on
  recent kernels): a cumulative CPU-package energy counter in microjoules that wraps around at
  ``max_energy_range_uj``. Since Linux 5.10 it is readable by root only (CVE-2020-8694); give
  your user read access (``sudo chmod o+r .../energy_uj``) or run as root to measure.
  It covers the CPU package (cores, caches, memory controller), not the screen, disks or the
  power supply's losses, and every process on the machine, not only yours.
* **NVML** (``pip install nvidia-ml-py``): ``nvmlDeviceGetTotalEnergyConsumption``, millijoules
  since the driver loaded, per GPU (Volta or newer).
* **Estimate**: a stated power draw in watts times the wall time, when neither can be read.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..utils import positive

POWERCAP_ROOT = Path("/sys/class/powercap")
LAPTOP_WATTS = 45.0  # a typical laptop's draw at the wall under full CPU load (30-65 W)


@dataclass
class EnergyReading:
    """Energy over one measured window and where the number came from."""

    joules: float
    seconds: float
    source: str  # 'measured: rapl', 'measured: rapl + nvml', 'estimated: 45 W x 12.3 s'
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured")

    @property
    def average_watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


def estimate(seconds: float, watts: float = LAPTOP_WATTS) -> EnergyReading:
    """Energy as a stated power draw times the wall time."""
    positive(watts, "power draw", "watts")
    return EnergyReading(watts * seconds, seconds, f"estimated: {watts:g} W x {seconds:.1f} s",
                         {"watts": watts})


# --------------------------------------------------------------------------- RAPL
def rapl_zones(root: str | Path = POWERCAP_ROOT) -> list[Path]:
    """Top-level RAPL zones (``intel-rapl:N``); sub-zones are parts of them and would double count.

    A ``psys`` zone (the whole platform, where present) already includes the packages, so it is
    used alone when it exists.
    """
    root = Path(root)
    zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    psys = [z for z in zones if _read_text(z / "name") == "psys"]
    return psys or zones


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def read_rapl(root: str | Path = POWERCAP_ROOT) -> tuple[dict[str, tuple[int, int]], str | None]:
    """``({zone: (energy_uj, max_energy_range_uj)}, None)`` or ``({}, why it cannot be read)``."""
    zones = rapl_zones(root)
    if not zones:
        return {}, f"no RAPL zones under {root}"
    out = {}
    for z in zones:
        try:
            energy = int((z / "energy_uj").read_text())
            wrap = int((z / "max_energy_range_uj").read_text())
        except PermissionError:
            return {}, (f"{z / 'energy_uj'} is not readable (root only since Linux 5.10); "
                        "run as root or allow read access to measure")
        except (OSError, ValueError) as exc:
            return {}, f"cannot read {z}: {exc}"
        out[z.name] = (energy, wrap)
    return out, None


def rapl_joules(start: dict[str, tuple[int, int]], end: dict[str, tuple[int, int]]) -> float:
    """Joules between two :func:`read_rapl` readings; a counter that wrapped once is unwrapped."""
    total = 0
    for zone, (e0, wrap) in start.items():
        e1 = end[zone][0]
        total += e1 - e0 if e1 >= e0 else e1 + wrap - e0
    return total / 1e6


# --------------------------------------------------------------------------- NVML
def read_nvml() -> tuple[dict[int, int], str | None]:
    """``({gpu index: millijoules since driver load}, None)`` or ``({}, why not)``."""
    try:
        import pynvml  # provided by the nvidia-ml-py package
    except ImportError:
        return {}, "NVML Python bindings not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
        try:
            return {i: int(pynvml.nvmlDeviceGetTotalEnergyConsumption(
                        pynvml.nvmlDeviceGetHandleByIndex(i)))
                    for i in range(pynvml.nvmlDeviceGetCount())}, None
        finally:
            pynvml.nvmlShutdown()
    except Exception as exc:  # NVMLError: no driver, no GPU, energy counter unsupported
        return {}, f"NVML energy counter unavailable: {exc}"


def _has_cuda() -> bool:
    import torch
    return torch.cuda.is_available()


# --------------------------------------------------------------------------- meter
class EnergyMeter:
    """Measure (or estimate) the energy of the wrapped block.

    >>> with EnergyMeter() as meter:
    ...     result = train_baseline(...)
    >>> meter.reading.joules, meter.reading.source

    Args:
        watts: power draw for the estimate when nothing can be measured.
        rapl_root: the powercap folder (a different one for tests or containers).
        use_rapl, use_nvml: try these counters.
    """

    def __init__(self, watts: float = LAPTOP_WATTS, *, rapl_root: str | Path = POWERCAP_ROOT,
                 use_rapl: bool = True, use_nvml: bool = True) -> None:
        positive(watts, "power draw", "watts")
        self.watts, self.rapl_root = watts, rapl_root
        self.use_rapl, self.use_nvml = use_rapl, use_nvml
        self.reading: EnergyReading | None = None
        self.notes: list[str] = []

    def __enter__(self) -> "EnergyMeter":
        self.notes = []
        self._rapl, why = read_rapl(self.rapl_root) if self.use_rapl else ({}, "RAPL not used")
        if why:
            self.notes.append(why)
        self._nvml, why = read_nvml() if self.use_nvml else ({}, "NVML not used")
        if why and _has_cuda():
            self.notes.append(why + "; GPU energy is not counted")
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.reading = self.read()

    def read(self) -> EnergyReading:
        """Energy since the block began (also usable inside the block)."""
        seconds = time.perf_counter() - self._t0
        parts, joules, details = [], 0.0, {"notes": list(self.notes)}
        if self._rapl:
            end, why = read_rapl(self.rapl_root)
            if end.keys() == self._rapl.keys():
                details["rapl_joules"] = rapl_joules(self._rapl, end)
                joules += details["rapl_joules"]
                parts.append("rapl")
            else:
                details["notes"].append(why or "RAPL zones changed during the run")
        if self._nvml:
            end, why = read_nvml()
            if end.keys() == self._nvml.keys():
                details["nvml_joules"] = sum(end[i] - self._nvml[i] for i in end) / 1e3
                joules += details["nvml_joules"]
                parts.append("nvml")
        if not parts:
            est = estimate(seconds, self.watts)
            est.details.update(details)
            return est
        return EnergyReading(joules, seconds, "measured: " + " + ".join(parts), details)
