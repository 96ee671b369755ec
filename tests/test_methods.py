"""The method and option vocabulary: one declaration, checkers with did-you-mean hints."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from trialkit import methods
from trialkit.errors import ComputationError, ModelSpecError
from trialkit.protocol.model import AnalysisPlan


def test_vocabulary_imports_only_the_standard_library_and_errors() -> None:
    tree = ast.parse(Path(methods.__file__).read_text(encoding="utf-8"))
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    assert {m for m in mods if m.startswith("trialkit")} == {"trialkit.errors"}


def test_protocol_literals_equal_the_vocabulary() -> None:
    hints = typing.get_type_hints(AnalysisPlan)
    assert typing.get_args(hints["model"]) == methods.FIT_METHODS
    assert typing.get_args(hints["df_method"]) == methods.DF_METHODS


def test_vcov_types_per_method() -> None:
    assert methods.VCOV_TYPES["gee"] == methods.GEE_VCOV
    assert set(methods.GEE_VCOV) <= set(methods.CR_TYPES)
    assert set(methods.FIT_METHODS) <= set(methods.RESULT_METHODS)
    assert set(methods.POWER_METHODS) <= set(methods.FIT_METHODS)


@pytest.mark.parametrize(
    ("check", "good", "bad", "code", "suggestion"),
    [
        (methods.check_fit_method, "gee", "lme", "fit.method", "lmm"),
        (methods.check_family, "binomial", "binomal", "fit.family", "binomial"),
        (methods.check_df_method, "kenward-roger", "kenward", "fit.df_method", "kenward-roger"),
        (methods.check_glmm_df_method, "z", "resid", "fit.glmm.df_method", "residual"),
        (methods.check_gee_corr, "exchangeable", "exchangable", "fit.gee.corr", "exchangeable"),
        (
            methods.check_cluster_level_kind,
            "ancova",
            "two_stage",
            "fit.cluster_level.kind",
            "two-stage",
        ),
    ],
)
def test_checkers(check, good, bad, code, suggestion) -> None:
    assert check(good) == good
    with pytest.raises(ModelSpecError) as e:
        check(bad)
    assert not isinstance(e.value, ComputationError)
    assert e.value.exit_code == 1
    assert e.value.codes == (code,)
    assert f"did you mean {suggestion!r}?" in e.value.problems[0].hint


def test_check_vcov_by_method() -> None:
    assert methods.check_vcov("CR1S", "ols-cr2") == "CR1S"
    with pytest.raises(ModelSpecError) as e:
        methods.check_vcov("CR1S", "gee")
    assert e.value.codes == ("fit.gee.vcov",)


def test_no_suggestion_when_nothing_is_close() -> None:
    with pytest.raises(ModelSpecError) as e:
        methods.check_family("poisson")
    assert "did you mean" not in e.value.problems[0].hint
    assert "got 'poisson'" in e.value.problems[0].message
