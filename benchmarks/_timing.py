"""Shared helpers of the benchmarks: timing, and running a workload on an earlier version.

``run_before(script, ref, args)`` extracts ``src/`` of the git revision ``ref`` into a
temporary directory and runs ``script --worker ...`` with that ``src`` first on
``PYTHONPATH``, so "before" and "after" are measured in one run on the same machine.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
#: the last commit before issue #18's engine (the "before" of its closing note)
BEFORE = "7c1d5bd"


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """``(best, median, best CPU)`` seconds of ``repeat`` calls after one warm-up call.

    Wall clock, and the process's CPU time (``time.process_time``), which a loaded
    shared machine inflates far less than the wall clock.
    """
    fn()
    times = []
    cpu = []
    for _ in range(max(1, repeat)):
        c0 = time.process_time()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return float(np.min(times)), float(np.median(times)), float(np.min(cpu))


def load_note() -> str:
    """The 1-minute load average against the number of cores (timings on a shared machine)."""
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return "load average unknown"
    return f"load average {load:.1f} on {os.cpu_count()} cores"


def run_before(script: Path, ref: str, args: list[str]) -> dict[str, Any] | None:
    """Run ``script --worker args`` against ``src/`` of git revision ``ref``; its JSON line."""
    try:
        blob = subprocess.run(
            ["git", "-C", str(REPO), "archive", ref, "src"], capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"  (before: cannot read revision {ref!r}: {err})")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
            tar.extractall(tmp, filter="data")
        env = dict(os.environ, PYTHONPATH=str(Path(tmp) / "src"))
        proc = subprocess.run(
            [sys.executable, str(script), "--worker", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(f"  (before: the run on {ref!r} failed: {proc.stderr.strip()[-400:]})")
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def ms(seconds: float) -> str:
    """Seconds as milliseconds, right-aligned."""
    return f"{seconds * 1e3:9.2f} ms"


def run_r(script: str, data: pd.DataFrame, *args: object) -> list[float] | None:
    """Run an R script on ``data`` (written to a CSV, its path the first argument).

    Returns the numbers the script prints, or None when ``Rscript`` is missing or
    the script fails (with the end of its error printed).
    """
    if not shutil.which("Rscript"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        data.to_csv(csv, index=False)
        path = Path(tmp) / "script.R"
        path.write_text(script)
        proc = subprocess.run(
            ["Rscript", str(path), str(csv), *map(str, args)],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        print(f"  R: failed ({proc.stderr.strip()[-300:]})")
        return None
    return [float(v) for v in proc.stdout.split()]
