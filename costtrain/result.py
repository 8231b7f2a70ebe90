"""The result record every trainer returns, and its JSON round trip."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import methods
from .errors import CosttrainError

Curve = dict[str, list]  # columns: samples, seconds, loss (loss curves) or accuracy (eval)


def new_curve(*columns: str) -> Curve:
    """An empty columnar curve, e.g. ``new_curve('samples', 'seconds', 'loss')``."""
    return {c: [] for c in columns}


@dataclass
class RunResult:
    """What one training run measured.

    Times are wall-clock seconds, one definition for every trainer (:mod:`costtrain.measure`):
    ``setup_seconds`` from the call to the first training step as a one-off run pays it
    (worker start-up included, even when warm workers were reused), ``warm_setup_seconds``
    what a re-run in the same process pays, ``train_seconds`` the training wall time less the
    evaluation pauses (in which no worker trains), ``eval_seconds`` evaluation that did not
    overlap training, ``total_seconds`` the measured wall time of the call (plus the start-up
    of reused warm workers, so that it is what a one-off run takes) and ``wall_seconds`` the
    call's wall time as it ran. ``steady_samples_per_second`` is the rate of the loss curve on
    the training clock after its first 20 % of points. ``extra['load']`` says whether other
    work competed for the cores meanwhile.
    ``loss_curve`` is the mean training loss indexed by samples seen (all workers together);
    ``worker_curves`` holds the same per worker for multi-process methods. ``eval_curve``
    has held-out accuracy by samples seen and by training seconds: the intermediate points
    (``eval_every``) read on a fixed, stratified slice of the test set, the same for every
    trainer (``extra['eval_slice']``: its size, of how many, its seed), the last point the
    final ``test_accuracy`` on the whole test set. ``compile_seconds`` is the
    part of set-up that ``torch.compile``'s first step(s) took (0 when not compiled).
    """

    method: str
    config: dict[str, Any]
    device: str = "cpu"
    threads: int = 1
    setup_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    total_seconds: float | None = None  # None: a record no trainer timed (set-up + train + eval)
    warm_setup_seconds: float | None = None
    wall_seconds: float | None = None
    samples: int = 0
    samples_per_second: float = 0.0
    steady_samples_per_second: float = 0.0
    compile_seconds: float = 0.0  # included in setup_seconds, reported on its own
    test_loss: float = float("nan")
    test_accuracy: float = float("nan")
    loss_curve: Curve = field(default_factory=lambda: new_curve("samples", "seconds", "loss"))
    worker_curves: dict[str, Curve] = field(default_factory=dict)
    eval_curve: Curve = field(default_factory=lambda: new_curve("samples", "seconds", "accuracy", "loss"))
    extra: dict[str, Any] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"  # ok | partial (a worker lost or stuck) | diverged | failed
    error: str | None = None
    label: str = ""  # the run's name in tables and legends; default from method and config
    created: str = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc)
                         .isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        self.label = self.label or default_label(self.method, self.config)
        if self.total_seconds is None:
            self.total_seconds = self.setup_seconds + self.train_seconds + self.eval_seconds
        if self.warm_setup_seconds is None:
            self.warm_setup_seconds = self.setup_seconds
        if self.wall_seconds is None:
            self.wall_seconds = self.total_seconds

    @property
    def one_off_seconds(self) -> float:
        """Set-up + training, as a one-off run pays it (evaluation not counted): the time
        ``costtrain advise`` predicts and ``compare``, notebook 04 and the decision card rank by."""
        return self.setup_seconds + self.train_seconds

    @property
    def warm_total_seconds(self) -> float:
        """End to end for a re-run in the same process (warm workers, no start-up)."""
        return self.total_seconds - (self.setup_seconds - self.warm_setup_seconds)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunResult":
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in d.items() if k in names}
        if not kept.get("label") and d.get("extra", {}).get("label"):  # files written before 0.2
            kept["label"] = d["extra"]["label"]
        return cls(**kept)

    def save(self, path: str | Path) -> Path:
        """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "RunResult":
        with open(path) as f:
            return cls.from_dict(json.load(f))


def default_label(method: str, config: dict[str, Any]) -> str:
    """``hogwild 2x1``, ``ps-sync 3w`` or ``baseline 2 ep``: a run's name from its settings."""
    row = methods.find(method)
    label = row.run_label(method, config) if row else None
    if label:
        return label
    if "workers" in config:
        return f"{method} {config['workers']}w"
    return f"{method} {config.get('epochs', '?')} ep"


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class OutputPathError(CosttrainError):
    """An output path that cannot hold a result file (not a regular file, not writable)."""


def _kind(st: os.stat_result) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(st.st_mode):
            return name
    return "not a regular file"


def output_target(path: str | Path, what: str = "output") -> Path:
    """The file `path` names (symlinks followed), or :class:`OutputPathError` if it is no file.

    Only regular files are ever replaced: a directory, a FIFO or a device is refused.
    """
    target = Path(os.path.realpath(path))
    try:
        st = target.stat()
    except FileNotFoundError:
        return target
    except OSError as exc:
        raise OutputPathError(f"{what} {str(path)!r} cannot be written: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputPathError(f"{what} {str(path)!r} exists and is {_kind(st)}; results are "
                              "written only to regular files: give a file path.")
    return target


def check_writable(path: str | Path, what: str = "output") -> Path:
    """Before any work: `path` can be written as a file (creates its folder; writes a probe)."""
    target = output_target(path, what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=target.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{what} {str(path)!r} cannot be written: "
                              f"{exc.strerror or exc}.") from None
    return target


def check_folder_writable(folder: str | Path, what: str = "folder") -> Path:
    """Before any work: files can be created in `folder` (created if missing)."""
    folder = Path(folder)
    if folder.is_symlink() and not folder.exists():
        raise OutputPathError(f"{what} {str(folder)!r} is a symlink to "
                              f"{os.readlink(folder)!r}, which does not exist: give a folder "
                              "(or remove the link).")
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what} {str(folder)!r} exists and is not a folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".costtrain-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputPathError(f"{what} {str(folder)!r} cannot be written: "
                              f"{exc.strerror or exc}.") from None
    return folder


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Dump ``obj`` as JSON to the regular file `path` via a temporary file in its folder.

    A symlink is followed (its target is replaced atomically), an existing file keeps its
    permission bits (a new one gets the umask's), and anything else (a directory, a FIFO, a
    device) is refused with :class:`OutputPathError`: a crash never leaves half a file.
    """
    target = output_target(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            json.dump(obj, f, indent=1, default=_json_default, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def save_results(results: list[RunResult], path: str | Path) -> Path:
    """Save several results as one JSON list (atomically)."""
    return write_json_atomic(path, [r.to_dict() for r in results])


def load_results(path: str | Path) -> list[RunResult]:
    """Load a JSON list written by :func:`save_results` (or a single result)."""
    with open(path) as f:
        data = json.load(f)
    return [RunResult.from_dict(d) for d in (data if isinstance(data, list) else [data])]
