"""Re-run the R reference scripts and compare with the stored values (needs Rscript).

CI reads the stored ``reference.json`` files and never needs R; this check, marked
``against_r`` and skipped when ``Rscript`` is absent, shows that the stored values are
exactly what the committed scripts produce with the installed R packages.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

# (folder, script, run from the repository root (True) or from the folder (False))
SCRIPTS = [
    ("lmm", "make_reference.R", True),
    ("fit_options", "make_reference.R", True),
    ("glmm", "make_reference.R", True),
    ("robust", "reference.R", False),
    ("cace", "make_reference.R", False),
    ("power", "make_reference.R", False),
    ("planning", "make_reference.R", True),
    ("feasibility", "make_reference.R", False),
]

pytestmark = [
    pytest.mark.against_r,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed"),
]


def _compare(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys differ"]
        return [m for k in a for m in _compare(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths differ"]
        return [
            m
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for m in _compare(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize(("folder", "script", "from_root"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_stored_reference_matches_a_fresh_r_run(
    tmp_path: Path, folder: str, script: str, from_root: bool
) -> None:
    if from_root:
        work = tmp_path / "tests" / "reference" / folder
        shutil.copytree(HERE / folder, work)
        cwd = tmp_path
        script_path = Path("tests") / "reference" / folder / script
    else:
        work = tmp_path / folder
        shutil.copytree(HERE / folder, work)
        cwd = work
        script_path = Path(script)
    (work / "reference.json").unlink()
    proc = subprocess.run(
        ["Rscript", str(script_path)], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    fresh = json.loads((work / "reference.json").read_text())
    stored = json.loads((HERE / folder / "reference.json").read_text())
    problems = _compare(stored, fresh)
    assert not problems, problems[:10]
