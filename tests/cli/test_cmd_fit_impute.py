"""``trialkit fit --impute multilevel``: JSON, determinism and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.cli import main


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(7)
    rows = []
    for la in range(10):
        u = rng.normal(0, 0.5)
        for kw in range(3):
            for _ in range(6):
                b = rng.normal()
                y = u + 0.5 * b + rng.normal()
                mid = 0.7 * y + rng.normal(0, 0.5)
                rows.append(
                    (
                        f"0{la}",
                        kw,
                        "intervention" if la % 2 else "control",
                        b,
                        mid,
                        y if rng.random() > 0.3 else np.nan,
                    )
                )
    p = tmp_path / "outcomes.csv"
    cols = ["la", "kw", "arm", "baseline", "mid", "score"]
    pd.DataFrame(rows, columns=cols).to_csv(p, index=False)
    return p


ARGS = [
    "--outcome",
    "score",
    "--treatment",
    "arm",
    "--treatment-level",
    "intervention",
    "--covariates",
    "baseline",
    "--clusters",
    "la,kw",
]
MI = ["--impute", "multilevel", "--auxiliary", "mid", "--imputations", "4", "--seed", "3"]


def _run(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_treatment_and_imputation(csv, capsys) -> None:
    out = _run(capsys, ["fit", str(csv), *ARGS, *MI, "--format", "json"])
    assert out["method"] == "multilevel-mi" and out["df_method"] == "barnard-rubin"
    assert set(out["treatment"]) >= {"estimate", "std_error", "df", "p_value", "conf_low"}
    imp = out["imputation"]
    assert imp["m"] == 4 and imp["df_method"] == "barnard-rubin"
    assert 0 < imp["fraction_missing_information"] < 1
    assert imp["relative_increase_in_variance"] > 0
    assert imp["auxiliary"] == ["mid"] and imp["seed"] == 3
    again = _run(capsys, ["fit", str(csv), *ARGS, *MI, "--format", "json"])
    assert again["treatment"] == out["treatment"]
    shifted = _run(capsys, ["fit", str(csv), *ARGS, *MI, "--delta", "-0.5", "--format", "json"])
    assert shifted["treatment"]["estimate"] != out["treatment"]["estimate"]
    assert shifted["imputation"]["delta"] == -0.5


def test_text_output_names_the_imputation(csv, capsys) -> None:
    assert main(["fit", str(csv), *ARGS, *MI]) == 0
    assert "multiple imputation: m = 4" in capsys.readouterr().out


def test_imputation_options_without_impute_are_usage_errors(csv, capsys) -> None:
    assert main(["fit", str(csv), *ARGS, "--seed", "3"]) == 2
    assert "fit.option_unused" in capsys.readouterr().err
