"""Execution backends for simulation power: local (chunks in this process) and Dask.

A backend maps a picklable function over chunks of replicate indices and
returns the chunk results *in chunk order*.  Because every replicate has its
own seed, the results do not depend on the backend, the number of workers or
the chunk size.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from trialkit.errors import PowerError

__all__ = ["Backend", "DaskBackend", "LocalBackend", "Progress", "chunk_indices", "make_backend"]


def chunk_indices(reps: int, chunk_size: int) -> list[range]:
    """Split ``0..reps−1`` into consecutive ranges of at most ``chunk_size``."""
    size = max(1, int(chunk_size))
    return [range(a, min(a + size, reps)) for a in range(0, reps, size)]


class Progress:
    """A one-line progress indicator on stderr, shown only on a terminal.

    Parameters
    ----------
    total : int
        Number of replicates.
    label : str
    enabled : bool, optional
        Default: ``sys.stderr.isatty()``.
    """

    def __init__(self, total: int, label: str = "", enabled: bool | None = None) -> None:
        self.total = max(1, int(total))
        self.done = 0
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.start = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        frac = self.done / self.total
        width = 30
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = time.perf_counter() - self.start
        sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} reps {elapsed:6.1f}s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()


class Backend(Protocol):
    """Maps ``fn`` over ``chunks`` and returns results in chunk order."""

    name: str

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]: ...

    def close(self) -> None: ...


class LocalBackend:
    """Run the chunks one after another in this process."""

    name = "local"

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        out = []
        for ch in chunks:
            out.append(fn(ch))
            if progress is not None:
                progress.update(_chunk_len(ch))
        return out

    def close(self) -> None:
        return None


def _chunk_len(ch: Any) -> int:
    try:
        return len(ch[1]) if isinstance(ch, tuple) else len(ch)
    except TypeError:
        return 1


class DaskBackend:
    """Run the chunks on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).  When omitted a
        :class:`distributed.LocalCluster` is started (and closed by :meth:`close`).
    workers : int, optional
        Workers of the local cluster (default 2).
    processes : bool
        Local cluster with processes (default) or threads (lighter, used in tests).
    timeout : str
        How long to wait for the scheduler.
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        workers: int | None = None,
        processes: bool = True,
        timeout: str = "10s",
    ) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is installed in CI
            raise PowerError.from_problem(
                path="backend",
                code="power.dask_missing",
                message="`--backend dask` needs the 'distributed' package; it is not installed.",
                hint="Install trialkit[dask] or use --backend local.",
            ) from exc
        self._cluster = None
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=timeout)
            else:
                self._cluster = LocalCluster(
                    n_workers=int(workers or 2),
                    threads_per_worker=1,
                    processes=processes,
                    dashboard_address=None,
                )
                self.client = Client(self._cluster)
        except OSError as exc:
            raise PowerError.from_problem(
                path="scheduler",
                code="power.dask_connect",
                message=f"cannot connect to the Dask scheduler {scheduler!r}: {exc}.",
                hint="Check the address (tcp://host:port) and that the scheduler is running.",
            ) from exc

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        from distributed import as_completed

        futures = self.client.map(fn, list(chunks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        for fut in as_completed(futures):
            out[index[fut.key]] = fut.result()
            if progress is not None:
                progress.update(_chunk_len(chunks[index[fut.key]]))
        return out

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_backend(
    name: str,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    processes: bool = True,
) -> LocalBackend | DaskBackend:
    """Backend by name: ``"local"`` or ``"dask"``."""
    if name == "local":
        return LocalBackend()
    if name == "dask":
        return DaskBackend(scheduler=scheduler, workers=workers, processes=processes)
    raise PowerError.from_problem(
        path="backend",
        code="power.backend",
        message=f"`backend` must be 'local' or 'dask'; got {name!r}.",
        hint="",
    )
