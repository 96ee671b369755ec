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


# ---------------------------------------------------------------- issue 16, item 7


def _run_json(capsys, *argv: str) -> dict:
    assert main(["fit", *argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--method", "cluster-level", "--df-method", "satterthwaite"], "--df-method"),
        (["--method", "gee", "--kind", "means"], "--kind"),
        (["--method", "ols-cr2", "--ml"], "--ml"),
        (["--method", "ols-cr2", "--family", "binomial"], "--family"),
        (["--method", "lmm", "--corr", "exchangeable"], "--corr"),
        (["--method", "gee", "--nagq", "5"], "--nagq"),
    ],
)
def test_option_the_method_ignores_is_a_usage_error(csv, capsys, extra, option):
    assert main(["fit", str(csv), *ARGS, *extra]) == 2
    err = capsys.readouterr().err
    assert "fit.option_unused" in err and option in err and extra[1] in err
    assert "Traceback" not in err


def test_gee_cr1_works_and_is_cr0_times_j_over_j_minus_1(csv, capsys):
    gee = [str(csv), *ARGS[:-1], "la", "--method", "gee"]
    cr0 = _run_json(capsys, *gee, "--vcov", "CR0")
    cr1 = _run_json(capsys, *gee, "--vcov", "CR1")
    assert cr1["treatment"]["std_error"] == pytest.approx(
        cr0["treatment"]["std_error"] * np.sqrt(10 / 9), rel=1e-12
    )


def test_df_method_z(csv, capsys):
    out = _run_json(capsys, str(csv), *ARGS, "--df-method", "z")
    assert out["df_method"] == "z"
    assert out["treatment"]["df"] is None  # infinite df: JSON null, the normal reference
    assert "normal" in out["df_rule"]


def test_df_rule_is_named_in_the_output(csv, capsys):
    bw = _run_json(capsys, str(csv), *ARGS, "--df-method", "between-within")
    assert "two-tier" in bw["df_rule"]
    ct = _run_json(capsys, str(csv), *ARGS, "--df-method", "containment")
    assert "nlme" in ct["df_rule"] and ct["df_method"] == "containment"
    assert main(["fit", str(csv), *ARGS, "--df-method", "containment"]) == 0
    assert "df method: containment" in capsys.readouterr().out


def test_ml_with_kenward_roger_uses_the_reml_refit(csv, capsys):
    reml = _run_json(capsys, str(csv), *ARGS)
    ml = _run_json(capsys, str(csv), *ARGS, "--ml")
    assert ml["reml"] is False and ml["inference_source"] == "reml-refit"
    assert ml["treatment"]["std_error"] == pytest.approx(reml["treatment"]["std_error"], rel=1e-9)
    assert ml["loglik"] != reml["loglik"]
    assert any("REML refit" in w for w in ml["warnings"])


@pytest.fixture
def binary_csv(tmp_path: Path) -> Path:
    """A council analyst's file: LA caseload on its natural scale, arms as labels."""
    src = Path(__file__).resolve().parents[1] / "reference" / "glmm" / "boundary.csv"
    p = tmp_path / "retention.csv"
    p.write_text(src.read_text())
    return p


BIN = [
    "--outcome",
    "retained",
    "--treatment",
    "arm",
    "--treatment-level",
    "intervention",
    "--covariates",
    "caseload,x",
    "--clusters",
    "la",
    "--family",
    "binomial",
]


def test_binary_json_has_odds_ratio_risk_difference_and_variance(binary_csv, capsys):
    out = _run_json(capsys, str(binary_csv), *BIN)
    eff = out["effects"]
    for key in (
        "odds_ratio",
        "odds_ratio_conf_low",
        "odds_ratio_conf_high",
        "risk_difference",
        "risk_difference_conf_low",
        "risk_difference_conf_high",
    ):
        assert np.isfinite(eff[key])
    assert eff["odds_ratio"] == pytest.approx(np.exp(out["treatment"]["estimate"]))
    assert set(out["variance_components"]) == {"la"}


def test_glmm_with_raw_caseload_is_singular_not_failed(binary_csv, capsys):
    """Item 8: caseload ~ 1,000 on a boundary fit used to end in 'did not converge'."""
    out = _run_json(capsys, str(binary_csv), *BIN)
    assert out["converged"] is True and out["singular"] is True
    gee = _run_json(capsys, str(binary_csv), *BIN, "--method", "gee")
    assert "odds_ratio" in gee["effects"]


@pytest.mark.parametrize("name", ["o.txt", "o.csv.gz", "o.xlsx"])
def test_only_csv_and_parquet(tmp_path, capsys, name):
    p = tmp_path / name
    p.write_bytes(b"a,b\n1,2\n")
    assert main(["fit", str(p), "--outcome", "a", "--treatment", "b"]) == 1
    assert "fit.data_format" in capsys.readouterr().err


def test_cluster_ids_stay_text(tmp_path, capsys, csv):
    """'01' and '1' are different LAs: ids are read as text by the store's reader."""
    d = pd.read_csv(csv, dtype={"la": str})
    assert d["la"].str.startswith("0").all()
    out = _run_json(capsys, str(csv), *ARGS)
    assert out["n_clusters"]["la"] == 10


def test_caseload_with_thousands_separators_is_one_clear_error(binary_csv, tmp_path, capsys):
    """A spreadsheet export writes "1,412": refused with the fix, not coded as 16 categories."""
    d = pd.read_csv(binary_csv)
    d["caseload"] = [f"{int(v):,}" for v in d["caseload"]]
    p = tmp_path / "formatted.csv"
    d.to_csv(p, index=False)
    assert '"1,' in p.read_text()  # as Excel writes it: quoted, with the separator
    assert main(["fit", str(p), *BIN]) == 1
    err = capsys.readouterr().err
    assert "fit.covariate_formatted_number" in err and "caseload" in err
    assert "rank" not in err and "Traceback" not in err
