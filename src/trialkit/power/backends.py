"""Execution backends for simulation power: local (worker processes) and Dask.

A backend maps a picklable function over chunks of replicate indices and
returns the chunk results *in chunk order*.  Because every replicate has its
own seed, the results do not depend on the backend, the number of workers or
the chunk size.  :func:`trialkit.power.simulation.simulate_power_grid` submits
every (scenario, chunk) task of a grid in one :meth:`Backend.map` call, so a
cluster of any size is kept busy.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Protocol

from trialkit._version import __version__
from trialkit.errors import PowerError

__all__ = [
    "Backend",
    "DaskBackend",
    "LocalBackend",
    "Progress",
    "chunk_indices",
    "environment_versions",
    "make_backend",
]


def environment_versions() -> dict[str, str]:
    """Versions that must agree between this process and every worker.

    Results are bit-for-bit reproducible only when the workers run the same
    trialkit, numpy and scipy (and the same Python minor version).
    """
    import numpy
    import scipy

    return {
        "trialkit": __version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "python": "{}.{}".format(*sys.version_info[:2]),
    }


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
    """Run the chunks on this machine, in worker processes when there are several.

    Parameters
    ----------
    workers : int, optional
        Worker processes (default: every core, ``os.cpu_count()``).  With one
        worker, or a single chunk, the chunks run in this process.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and int(workers) < 1:
            raise PowerError.from_problem(
                path="workers",
                code="power.workers",
                message=f"`workers` must be a whole number of at least 1; got {workers!r}.",
                hint="Pass --workers 1 to run in this process, or leave it out to use every core.",
            )
        self.workers = int(workers) if workers is not None else (os.cpu_count() or 1)

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        n = min(self.workers, len(chunks))
        if n <= 1:
            out = []
            for ch in chunks:
                out.append(fn(ch))
                if progress is not None:
                    progress.update(_chunk_len(ch))
            return out
        results: list[Any] = [None] * len(chunks)
        with ProcessPoolExecutor(max_workers=n) as pool:
            futures = {pool.submit(fn, ch): i for i, ch in enumerate(chunks)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if progress is not None:
                    progress.update(_chunk_len(chunks[i]))
        return results

    def close(self) -> None:
        return None


def _chunk_len(ch: Any) -> int:
    try:
        return len(ch[1]) if isinstance(ch, tuple) else len(ch)
    except TypeError:
        return 1


class DaskBackend:
    """Run the chunks on a Dask distributed cluster.

    Every worker must run the same trialkit, numpy, scipy and Python minor
    version as this process (:func:`environment_versions`); a mismatch is an
    error naming the worker, checked on connecting and again before each map.

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
        try:
            self.check_versions()
        except PowerError:
            self.close()
            raise

    def check_versions(self) -> None:
        """Refuse workers whose :func:`environment_versions` differ from this process's."""
        here = environment_versions()
        there: dict[str, dict[str, str]] = self.client.run(environment_versions)
        bad = [
            f"{worker}: {key} {theirs.get(key, 'missing')} (here {mine})"
            for worker, theirs in sorted(there.items())
            for key, mine in here.items()
            if theirs.get(key) != mine
        ]
        if bad:
            raise PowerError.from_problem(
                path="scheduler",
                code="power.dask_versions",
                message="Dask workers run other versions than this process: " + "; ".join(bad),
                hint="Install the same trialkit, numpy and scipy on every worker "
                "(results are reproducible only with identical versions).",
            )

    def map(
        self, fn: Callable[[Any], Any], chunks: Sequence[Any], progress: Progress | None = None
    ) -> list[Any]:
        from distributed import as_completed as completed

        self.check_versions()
        futures = self.client.map(fn, list(chunks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        out: list[Any] = [None] * len(futures)
        for fut in completed(futures):
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
    """Backend by name: ``"local"`` or ``"dask"``.

    ``workers`` is the number of worker processes: for ``local``, default every
    core; for ``dask`` without a ``scheduler``, the workers of the
    :class:`distributed.LocalCluster` started for the run (default 2).
    """
    if name == "local":
        return LocalBackend(workers=workers)
    if name == "dask":
        return DaskBackend(scheduler=scheduler, workers=workers, processes=processes)
    raise PowerError.from_problem(
        path="backend",
        code="power.backend",
        message=f"`backend` must be 'local' or 'dask'; got {name!r}.",
        hint="",
    )
