"""Read-only data shared with worker processes outside ``/dev/shm`` (Linux: an anonymous memory file).

torch shares a tensor with another process through POSIX shared memory: files in ``/dev/shm``.
Docker gives a container 64 MB there unless told otherwise, less than one decoded dataset
(Fashion-MNIST's 60,000 training images take 188 MB as float32). The workers only read the
data, so it goes into an anonymous memory file instead (``memfd_create``): outside
``/dev/shm``, counted against the memory (and a container's memory limit) like any other
memory, never named in a folder, and freed when the last process that maps it ends, however it
ends.

A :class:`SharedTensor` pickles (into a spawned process's arguments or down a pool worker's
pipe) as a duplicate of its file descriptor, which :mod:`multiprocessing` hands over to the
receiving process; that process maps the same pages, so nothing is copied. The model, which
the workers write, keeps torch's own sharing; :func:`costtrain.run.guards.check_shared_memory`
checks that it fits in ``/dev/shm``. Where there is no ``memfd_create`` (macOS, Windows)
:func:`share` falls back to torch's ``share_memory_()``.
"""
from __future__ import annotations

import mmap
import os
import weakref
from multiprocessing.reduction import DupFd, ForkingPickler

import torch
from torch.multiprocessing.reductions import reduce_tensor

from ..errors import ResourceError

AVAILABLE = hasattr(os, "memfd_create")


class SharedTensor(torch.Tensor):
    """A tensor in an anonymous memory file of this process, for other processes to read.

    Operations on it give plain tensors; only the tensor :func:`share` returned pickles as its
    file descriptor.
    """

    __torch_function__ = torch._C._disabled_torch_function_impl


def share(t: torch.Tensor) -> torch.Tensor:
    """`t` moved to memory that spawned workers map without copying and without ``/dev/shm``.

    Returns a :class:`SharedTensor` holding a copy of `t` (Linux, CPU), else
    ``t.share_memory_()``. Raises :class:`~costtrain.errors.ResourceError` when the memory
    cannot be had.
    """
    if isinstance(t, SharedTensor) or not AVAILABLE or t.device.type != "cpu" or t.numel() == 0:
        return t if isinstance(t, SharedTensor) else t.share_memory_()
    nbytes = t.numel() * t.element_size()
    fd = os.memfd_create("costtrain-data", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, nbytes)
        buf = mmap.mmap(fd, nbytes)
    except OSError as exc:
        os.close(fd)
        doing = f"mapping {nbytes / 2**20:.0f} MB of data for the workers"
        raise (ResourceError.describe(exc, doing) or exc) from None
    out = torch.frombuffer(buf, dtype=t.dtype, count=t.numel()).view(t.shape)
    out = out.as_subclass(SharedTensor)
    out.copy_(t)
    out._memfd = (fd, out.data_ptr(), nbytes)  # type: ignore[attr-defined]
    weakref.finalize(out, os.close, fd)
    return out


def _attach(fd: DupFd, dtype: torch.dtype, shape: tuple[int, ...], nbytes: int) -> torch.Tensor:
    """In the receiving process: map the sender's memory file (a plain tensor on its pages)."""
    handle = fd.detach()
    try:
        buf = mmap.mmap(handle, nbytes)
    finally:
        os.close(handle)
    return torch.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize).view(shape)


def _reduce(t: SharedTensor):
    fd, ptr, nbytes = getattr(t, "_memfd", (None, None, None))
    if fd is None or t.data_ptr() != ptr:  # a copy of a SharedTensor: torch's own sharing
        return reduce_tensor(t.as_subclass(torch.Tensor))
    return _attach, (DupFd(fd), t.dtype, tuple(t.shape), nbytes)


ForkingPickler.register(SharedTensor, _reduce)
