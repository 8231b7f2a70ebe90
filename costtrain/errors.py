"""The package's errors for bad input or environment (no torch: the CLI raises them before import)."""
from __future__ import annotations

import errno

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

# errno -> (what ran out, how to read or raise the limit)
_ADVICE = {
    errno.EMFILE: ("open files", "the limit for one process is {nofile} (`ulimit -n`); raise it, "
                                 "e.g. `ulimit -n 4096`, or use fewer workers"),
    errno.ENFILE: ("open files", "the whole system's table of open files is full; close other "
                                 "programs or use fewer workers"),
    errno.EAGAIN: ("processes", "the system refused to start another process or thread (limit "
                                "for this user: {nproc}, `ulimit -u`); raise it or use fewer "
                                "workers"),
    errno.ENOMEM: ("memory", "the memory or address-space limit was reached (`ulimit -v`: "
                             "{address_space}; a container's memory limit); use fewer workers, a "
                             "smaller --subset, or raise the limit"),
    errno.ENOSPC: ("space", "a file system or shared-memory folder is full (`df -h /dev/shm`; a "
                            "Docker container needs --shm-size=1g); free space or use a smaller "
                            "model"),
}


def gist(exc: BaseException, limit: int | None = 300) -> str:
    """The first line of an error's message, at most `limit` characters (None: all of it; torch's
    errors can be pages long); the exception's type when it has no message."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__


class CosttrainError(ValueError):
    """Bad input or environment, with a message that says what to do."""


class CorruptDataError(CosttrainError):
    """A dataset file exists but is truncated or malformed."""


class ResourceError(CosttrainError):
    """The system ran out of something a run needs (files, processes, memory): one clear paragraph."""

    @classmethod
    def describe(cls, exc: BaseException, doing: str) -> "ResourceError | None":
        """The paragraph for `exc` raised while `doing` (e.g. 'starting 4 worker processes'),
        or None when `exc` is not a resource exhaustion."""
        code = getattr(exc, "errno", None)
        if isinstance(exc, MemoryError):
            code = errno.ENOMEM
        elif code is None:  # torch: RuntimeError (mmap, shm), ImportError (a library's segments)
            text = str(exc)
            code = next((c for c, msg in ((errno.ENOSPC, "No space left on device"),
                                          (errno.ENOMEM, "Cannot allocate memory"),
                                          (errno.ENOMEM, "can't allocate memory"),
                                          (errno.ENOMEM, "failed to map segment"),
                                          # oneDNN, when it cannot get the memory for a kernel
                                          (errno.ENOMEM, "could not create a primitive"),
                                          (errno.EMFILE, "Too many open files"),
                                          (errno.EAGAIN, "Resource temporarily unavailable"),
                                          (errno.EAGAIN, "can't start new thread"))
                         if msg in text), None)
        if code not in _ADVICE:
            return None
        what, advice = _ADVICE[code]
        return cls(f"the system ran out of {what} while {doing} "
                   f"({getattr(exc, 'strerror', None) or str(exc) or type(exc).__name__}): "
                   f"{advice.format(**_limits())}.")


def _limits() -> dict[str, str]:
    """The soft limits named in the advice, as text ('unlimited' or a number)."""
    def soft(name: str) -> str:
        try:
            value = resource.getrlimit(getattr(resource, name))[0]  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            return "unknown"
        return "unlimited" if value == resource.RLIM_INFINITY else f"{value:,}"
    return dict(nofile=soft("RLIMIT_NOFILE"), nproc=soft("RLIMIT_NPROC"),
                address_space=soft("RLIMIT_AS"))
