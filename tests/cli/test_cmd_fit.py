"""``trialkit fit`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trialkit.cli import main


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(2)
    rows = []
    for la in range(10):
        u = rng.normal(0, 0.5)
        for kw in range(3):
            for _ in range(6):
                b = rng.normal()
                rows.append(
                    (
                        f"0{la}",
                        kw,
                        "intervention" if la % 2 else "control",
                        b,
                        u + 0.5 * b + rng.normal(),
                    )
                )
    p = tmp_path / "outcomes.csv"
    pd.DataFrame(rows, columns=["la", "kw", "arm", "baseline", "score"]).to_csv(p, index=False)
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


def test_json_keys(csv, capsys):
    assert main(["fit", str(csv), *ARGS, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["treatment"]) >= {
        "estimate",
        "std_error",
        "df",
        "statistic",
        "p_value",
        "conf_low",
        "conf_high",
    }
    assert [t["term"] for t in out["fixed_effects"]] == [
        "(Intercept)",
        "arm[intervention]",
        "baseline",
    ]
    assert set(out["variance_components"]) == {"la", "kw", "residual"}
    for key in (
        "icc",
        "n_obs",
        "n_clusters",
        "n_excluded",
        "singular",
        "converged",
        "loglik",
        "method",
        "df_method",
    ):
        assert key in out
    assert out["n_clusters"] == {"la": 10, "kw": 30} and out["df_method"] == "kenward-roger"


def test_text_and_df_method(csv, capsys):
    assert main(["fit", str(csv), *ARGS, "--df-method", "satterthwaite"]) == 0
    assert "t(" in capsys.readouterr().out


def test_parquet(csv, tmp_path, capsys):
    pq = tmp_path / "o.parquet"
    pd.read_csv(csv).to_parquet(pq)
    assert main(["fit", str(pq), *ARGS, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_obs"] == 180


def test_bad_column_exit_1(csv, capsys):
    assert (
        main(
            [
                "fit",
                str(csv),
                "--outcome",
                "nope",
                "--treatment",
                "arm",
                "--treatment-level",
                "intervention",
                "--clusters",
                "la",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "nope" in err and "fit.column_missing" in err


def test_missing_treatment_level_exit_1(csv, capsys):
    assert (
        main(["fit", str(csv), "--outcome", "score", "--treatment", "arm", "--clusters", "la"]) == 1
    )
    assert "'control', 'intervention'" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "content"), [("o.parquet", b"junk"), ("o.csv", b'a,b\n"x\n')])
def test_unreadable_data_exit_1(tmp_path, capsys, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    assert main(["fit", str(p), "--outcome", "a", "--treatment", "b"]) == 1
    err = capsys.readouterr().err
    assert "fit.data_unreadable" in err and "internal error" not in err


def test_usage_error_exit_2(csv):
    assert main(["fit", str(csv), "--treatment", "arm"]) == 2


@pytest.mark.parametrize(
    ("extra", "method"),
    [
        (["--vcov", "CR2"], "lmm"),
        (["--method", "cluster-level", "--kind", "means"], "cluster-level"),
        (["--method", "cluster-level", "--kind", "ancova"], "cluster-level"),
        (["--method", "ols-cr2", "--vcov", "CR3"], "ols-cr2"),
        (["--method", "gee", "--corr", "independence", "--vcov", "CR3"], "gee"),
    ],
)
def test_method_options_pass_through(csv, capsys, extra, method):
    assert main(["fit", str(csv), *ARGS, *extra, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == method
    if extra[:2] == ["--vcov", "CR2"]:
        assert out["robust"]["vcov_type"] == "CR2"


def test_cluster_level_means_matches_python(csv, capsys):
    from trialkit.models import fit

    data = pd.read_csv(csv, dtype={"la": str})
    py = fit(
        data,
        outcome="score",
        treatment="arm",
        treatment_level="intervention",
        covariates=["baseline"],
        clusters=["la", "kw"],
        method="cluster-level",
        kind="means",
    )
    assert main(["fit", str(csv), *ARGS, "--method", "cluster-level", "--kind", "means",
                 "--format", "json"]) == 0  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert out["treatment"]["estimate"] == py.treatment.estimate
    assert out["treatment"]["df"] == py.treatment.df
