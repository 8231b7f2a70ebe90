"""The cheap levers before more processes: ``torch.compile``, mixed precision, ``channels_last``
and a larger batch with the linear scaling rule.

Each is one keyword of :func:`~costtrain.train.baseline.train_baseline` and
:func:`~costtrain.hogwild.train_hogwild` (``costtrain run --compile --amp bf16 --channels-last
--base-batch 64``), off by default, and each is kept only when it pays on *your* machine
(notebook ``01b_free_speedups``, ``costtrain advise``, ``benchmarks/levers.py``):

* ``compile``: ``torch.compile(model, mode=...)`` with one of :data:`COMPILE_MODES`
  (``True`` = ``"default"``). The first compiled step traces and compiles the net (seconds to
  minutes; a C++ compiler builds the CPU kernels). The trainers take that step during set-up,
  on a full batch whose effects are undone, and report its time as ``compile_seconds`` (part
  of ``setup_seconds``), so a one-off run is charged for it. A last, smaller batch of an
  epoch runs eagerly instead of compiling a second graph.
* ``amp``: autocast to ``"bf16"`` (CPU or CUDA) or ``"fp16"`` (CUDA, with a gradient scaler).
  bf16 is fast only on CPUs with native bf16 instructions (AVX512-BF16 or AMX on x86, the BF16
  extension on Arm); elsewhere it is emulated and much slower, so it is refused unless forced.
* ``channels_last``: conv nets keep their 4-D weights and activations in NHWC order, which
  oneDNN and cuDNN often run faster.
* ``base_batch``: the learning rate given is the one for batches of ``base_batch`` samples;
  the run uses ``lr * batch_size / base_batch`` (:func:`~costtrain.train.engine.linear_scaled_lr`,
  the rule the parameter server's sync mode and local SGD apply to their workers' batches).

The checks (:func:`check_levers`) run before any data is loaded or process started.
"""
from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from ..errors import gist
from ..utils import CosttrainError
from .engine import loss_fn

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86: AVX512-BF16, AMX; Arm: the BF16 extension
CXX_COMPILERS = ("g++", "c++", "clang++")  # what Inductor's CPU back end can build kernels with


@dataclass(frozen=True)
class Levers:
    """Which levers a run uses (picklable: Hogwild! workers receive it)."""

    compile: str | None = None  # a torch.compile mode, None = eager
    amp: str | None = None  # "bf16" | "fp16" | None
    channels_last: bool = False

    @property
    def on(self) -> bool:
        return bool(self.compile or self.amp or self.channels_last)

    def describe(self) -> str:
        """``compile (default) + bf16 autocast + channels_last``, or ``none``."""
        parts = ([f"compile ({self.compile})"] if self.compile else []) \
            + ([f"{self.amp} autocast"] if self.amp else []) \
            + (["channels_last"] if self.channels_last else [])
        return " + ".join(parts) or "none"

    def config(self) -> dict[str, Any]:
        """The keys every result's ``config`` carries."""
        return dict(compile=self.compile, amp=self.amp, channels_last=self.channels_last)


def make_levers(compile: bool | str | None = False, amp: str | None = None,
                channels_last: bool = False) -> Levers:
    """Check the values' types and names (not yet the hardware: :func:`check_levers`)."""
    if compile is True:
        compile = "default"
    if compile in (False, None):
        compile = None
    elif compile not in COMPILE_MODES:
        raise CosttrainError(f"compile must be False, True or a torch.compile mode "
                             f"({', '.join(COMPILE_MODES)}), got {compile!r}.")
    if amp is not None and amp not in AMP_DTYPES:
        raise CosttrainError(f"amp must be None, 'bf16' or 'fp16', got {amp!r}.")
    if not isinstance(channels_last, bool):
        raise CosttrainError(f"channels_last must be True or False, got {channels_last!r}.")
    return Levers(compile, amp, channels_last)


# ------------------------------------------------------------------ what the hardware can do

def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (``flags`` on x86, ``Features`` on Arm);
    empty where there is no such file (then :func:`native_bf16` asks torch)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def cpu_vector_isa(flags: frozenset[str]) -> str:
    """What the CPU's widest vector unit is, in words: ``AVX2 only``, ``AVX-512 without BF16``."""
    if "avx512f" in flags:
        return "AVX-512 without BF16"
    if "avx2" in flags:
        return "AVX2 only"
    if flags:
        return "no AVX-512 BF16, AMX or Arm BF16"
    return f"torch reports {torch.backends.cpu.get_cpu_capability()}"


def native_bf16(flags: frozenset[str] | None = None) -> tuple[bool, str]:
    """(whether this CPU computes bf16 natively, what it has in words).

    Reads :func:`cpu_flags` (a test can fake them); without flags, falls back on
    ``torch.backends.cpu.get_cpu_capability()``, which names no bf16 support: not confirmed.
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    found = sorted(set(BF16_FLAGS) & flags)
    if found:
        return True, ", ".join(found)
    return False, cpu_vector_isa(flags)


def cxx_compiler() -> str | None:
    """The C++ compiler Inductor would build CPU kernels with (``$CXX`` first), or None."""
    for name in (os.environ.get("CXX"), *CXX_COMPILERS):
        if name and shutil.which(name):
            return name
    return None


def has_conv(model: nn.Module) -> bool:
    """Whether `model` has a 2-D convolution (what ``channels_last`` changes)."""
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def check_levers(lv: Levers, device: torch.device, model: nn.Module | None = None, *,
                 force_amp: bool = False) -> None:
    """Refuse, before any training, a lever this hardware or `model` cannot use well."""
    if lv.compile and device.type == "cpu" and cxx_compiler() is None:
        raise CosttrainError(
            "compile: torch.compile builds CPU kernels with a C++ compiler and none was found "
            f"(tried $CXX, {', '.join(CXX_COMPILERS)}); install one (Debian/Ubuntu: "
            "apt-get install g++) or train without compile.")
    if lv.compile == "reduce-overhead" and device.type != "cuda":
        raise CosttrainError("compile mode 'reduce-overhead' uses CUDA graphs: CUDA only; on "
                             f"{device.type} use compile=True (mode 'default').")
    if lv.amp:
        _check_amp(lv.amp, device, force_amp)
    if lv.channels_last and model is not None and not has_conv(model):
        raise CosttrainError(
            f"channels_last changes how conv nets lay out their 4-D activations; "
            f"{type(model).__name__} has no Conv2d layer, so it would change nothing: leave it "
            "off for this model.")


def _check_amp(amp: str, device: torch.device, force: bool) -> None:
    if device.type == "cpu":
        if amp == "fp16":
            raise CosttrainError("amp='fp16' is for CUDA GPUs; on the CPU use amp='bf16' (fast "
                                 "only with native bf16) or no amp.")
        native, has = native_bf16()
        if not native and not force:
            raise CosttrainError(
                f"amp='bf16': this CPU has no native bf16 ({has}); bf16 would be much slower "
                "here (emulated, tens of times slower matrix products); pass force_amp=True / "
                "--force-amp to run anyway.")
    elif device.type == "cuda":
        if amp == "bf16" and not torch.cuda.is_bf16_supported() and not force:
            raise CosttrainError(
                "amp='bf16': this GPU has no native bf16 (it needs compute capability 8.0 or "
                "newer); use amp='fp16', or pass force_amp=True / --force-amp to run anyway.")
    else:
        raise CosttrainError(f"amp on {device.type} is not supported by costtrain; use the "
                             "CPU or CUDA, or no amp.")


# ------------------------------------------------------------------ inside a training loop

def to_memory_format(model: nn.Module, lv: Levers) -> nn.Module:
    """`model` in channels_last layout when asked (before sharing it or building an optimizer)."""
    return model.to(memory_format=torch.channels_last) if lv.channels_last else model


def grad_scaler(lv: Levers, device: torch.device) -> torch.amp.GradScaler:
    """fp16 needs its loss scaled (small gradients underflow); for anything else a pass-through."""
    return torch.amp.GradScaler(device.type, enabled=lv.amp == "fp16")


def _quiet_cuda_probe() -> None:
    """Keep torch's C++-extension logger to errors: compiling for the CPU it warns that no CUDA
    runtime was found and names a machine path, on every machine without a GPU."""
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


class Fast:
    """The net as a training loop calls it with the levers on.

    ``Fast(model, levers, device, batch_size)(x)`` converts ``x`` to channels_last, runs the
    compiled net on full batches (the eager one on a smaller last batch: no second compile)
    under autocast, and returns float32 scores, so the loss is computed in float32.
    Evaluation uses ``model`` itself (eager, float32).
    """

    def __init__(self, model: nn.Module, lv: Levers, device: torch.device,
                 batch_size: int) -> None:
        self.model, self.lv, self.device, self.batch_size = model, lv, device, batch_size
        if lv.compile and device.type == "cpu":  # inductor's "No CUDA runtime is found, using
            _quiet_cuda_probe()                  # CUDA_HOME=..." says nothing on a CPU run
        self.net = torch.compile(model, mode=lv.compile) if lv.compile else model
        self.compile_seconds = 0.0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.lv.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        net = self.net if len(x) == self.batch_size else self.model
        if self.lv.amp is None:
            return net(x)
        with torch.autocast(self.device.type, dtype=AMP_DTYPES[self.lv.amp]):
            return net(x).float()

    def warm_up(self, x: torch.Tensor, y: torch.Tensor, undo_buffers: bool = True) -> float:
        """Compile now: one forward and backward on the full batch (x, y), timed; then its
        gradients are dropped and (with `undo_buffers`) buffers such as BatchNorm's running
        statistics put back. Returns the seconds (0 without compile)."""
        if not self.lv.compile or len(x) != self.batch_size:
            return 0.0
        saved = snapshot_buffers(self.model) if undo_buffers else []
        t0 = time.perf_counter()
        try:
            loss_fn(self(x.to(self.device)), y.to(self.device)).backward()
        except Exception as exc:  # Inductor's errors are pages long: say what to do first
            raise CosttrainError(f"torch.compile failed in its first step ({type(exc).__name__}: "
                                 f"{gist(exc)}); train without compile.") from exc
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.compile_seconds = time.perf_counter() - t0
        restore_buffers(self.model, saved)
        for p in self.model.parameters():
            p.grad = None
        return self.compile_seconds


def compile_in_this_process() -> None:
    """Let Inductor build kernels in this process, not in a pool of its own: a Hogwild! worker
    that is stopped must not leave compiler processes (and their semaphores) behind."""
    import torch._inductor.config as inductor_config
    inductor_config.compile_threads = 1


def snapshot_buffers(model: nn.Module) -> list[torch.Tensor]:
    """Copies of `model`'s buffers (Hogwild!: the parent undoes its workers' warm-up steps)."""
    return [b.detach().clone() for b in model.buffers()]


def restore_buffers(model: nn.Module, saved: list[torch.Tensor]) -> None:
    """Put back what :func:`snapshot_buffers` copied."""
    with torch.no_grad():
        for b, s in zip(model.buffers(), saved):
            b.copy_(s)


def reset_compiled() -> None:
    """Forget every compiled graph in this process (``torch._dynamo.reset()``): the next
    compiled run traces and compiles again. Inductor's caches (on disk, and the kernels already
    loaded in this process) survive, so a repeat compiles faster than the first run did; charge
    a one-off job the longest compile measured."""
    torch._dynamo.reset()
