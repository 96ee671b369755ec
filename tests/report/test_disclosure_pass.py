"""The one disclosure pass: every published number, one attack across all of them.

The attack is checked two ways: by the pass's own exact elimination modulo a
prime (:func:`recoverable_forms`) and by an independent floating-point rank test
written here (numpy least squares), on synthetic attacks, on hand-built small
trials and on the demo report.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialkit.analyse.trial_analysis import TrialAnalysis
from trialkit.errors import ReportError
from trialkit.pipeline import DemoResult
from trialkit.report import tables as T
from trialkit.report.build import Figure, Report, Section, build_report
from trialkit.report.disclosure import SUPPRESSED, DisclosureSettings, recoverable_forms
from trialkit.report.disclosure_pass import (
    DisclosureDecision,
    apply_disclosure,
    attack_published,
    decide_disclosure,
)
from trialkit.report.published import Count, Fact, Ratio, count, token

STANDARD = DisclosureSettings()
STRICT = DisclosureSettings(mode="strict")


# ---------------------------------------------------------------------------- reference attack
def _float_attack(decision: DisclosureDecision) -> set[str]:
    """Independent attack: least squares on every published form (float rank test)."""
    facts = decision.facts
    hidden = set(decision.primary) | set(decision.secondary)
    atoms = sorted({a for f in facts.values() for c in _parts(f) for a, _ in c.terms})
    col = {a: k for k, a in enumerate(atoms)}

    def vec(c: Count) -> np.ndarray:
        v = np.zeros(len(atoms))
        for a, coef in c.terms:
            v[col[a]] = coef
        return v

    rows = [
        vec(c)
        for fid, f in facts.items()
        if fid not in hidden and fid not in decision.coarsened
        for c in _parts(f)
        if c.people
    ]
    P = np.array(rows) if rows else np.zeros((0, len(atoms)))
    out = set()
    for fid in hidden:
        f = facts[fid]
        targets = (
            [c for c in _parts(f) if 1 <= c.value < decision.settings.threshold]
            if isinstance(f, Ratio)
            else [f]
        )
        for c in targets:
            if not c.people:
                continue
            h = vec(c)
            if not len(P):
                continue
            y, *_ = np.linalg.lstsq(P.T, h, rcond=None)
            if np.linalg.norm(P.T @ y - h) < 1e-8:
                out.add(fid)
    return out


def _parts(f: Fact) -> list[Count]:
    return [f.numerator, f.denominator] if isinstance(f, Ratio) else [f]


def _table_facts(values: np.ndarray, *, n_la: int = 1) -> dict[str, Fact]:
    """An LA × category table of counts with row and column totals, as facts."""
    r, c = values.shape
    facts: dict[str, Fact] = {}
    for i in range(r):
        for j in range(c):
            facts[f"cell/{i}/{j}"] = count(f"cell/{i}/{j}", values[i, j], [f"x{i}_{j}"], n_la=n_la)
        facts[f"row/{i}"] = count(
            f"row/{i}", values[i].sum(), [f"x{i}_{j}" for j in range(c)], n_la=n_la
        )
    for j in range(c):
        facts[f"col/{j}"] = count(
            f"col/{j}", values[:, j].sum(), [f"x{i}_{j}" for i in range(r)], n_la=r * n_la
        )
    facts["total"] = count(
        "total", values.sum(), [f"x{i}_{j}" for i in range(r) for j in range(c)], n_la=r * n_la
    )
    return facts


def _only_primary(facts: dict[str, Fact], s: DisclosureSettings) -> DisclosureDecision:
    d = decide_disclosure(facts, s)
    return DisclosureDecision(
        settings=s, facts=facts, primary=d.primary, secondary=frozenset(), coarsened=frozenset()
    )


# ---------------------------------------------------------------------------- linear algebra
@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            st.lists(st.lists(st.integers(-1, 1), min_size=k, max_size=k), max_size=7),
            st.lists(st.lists(st.integers(-1, 1), min_size=k, max_size=k), min_size=1, max_size=4),
        )
    )
)
def test_exact_attack_agrees_with_float_rank(pair) -> None:
    published, hidden = (np.array(x, dtype=np.int64) for x in pair)
    k = hidden.shape[1]
    published = published.reshape(-1, k)
    got = recoverable_forms(published, hidden)
    for h, hit in zip(hidden, got, strict=True):
        if not len(published):
            assert hit == (not h.any())
            continue
        y, *_ = np.linalg.lstsq(published.T.astype(float), h.astype(float), rcond=None)
        assert hit == bool(np.linalg.norm(published.T @ y - h) < 1e-8)


# ---------------------------------------------------------------------------- synthetic attacks
def test_a_share_that_reveals_a_denominator_is_coarsened() -> None:
    """LA01: 3 withdrew (hidden), 30 continued, referred 40; a share 6/33 of consented
    families (0.182: nothing else with a denominator below 100) gives 33 = withdrew +
    continued, so withdrew = 3."""
    facts: dict[str, Fact] = {
        "nc": count("nc", 7, ["nc"], n_la=1),
        "wd": count("wd", 3, ["wd"], n_la=1),
        "co": count("co", 30, ["co"], n_la=1),
        "ref": count("ref", 40, ["nc", "wd", "co"], n_la=1),
    }
    share = Ratio(
        id="share",
        value=6 / 33,
        numerator=count("share/num", 6, ["fb"], n_la=1),
        denominator=count("share/den", 33, ["wd", "co"], n_la=1),
        text="0.182",
    )
    facts["share"] = share
    naive = _only_primary(facts, STANDARD)
    assert naive.primary == {"wd"}
    assert "wd" in attack_published(naive)  # the attack of the issue works on the naive report
    d = decide_disclosure(facts, STANDARD)
    assert attack_published(d) == () and not _float_attack(d)
    assert d.status("share") == "coarsened" and d.display("share") == "0.2"
    assert d.status("wd") == "suppressed"


def test_a_share_of_a_small_count_is_suppressed() -> None:
    """'0 of 2 Champions' discloses the 2."""
    share = Ratio(
        id="champions",
        value=0.0,
        numerator=count("champions/num", 0, ["ch_done"], n_la=1),
        denominator=count("champions/den", 2, ["ch"], n_la=1),
        text="0",
    )
    d = decide_disclosure({"champions": share}, STANDARD)
    assert d.display("champions") == SUPPRESSED
    big = Ratio(
        id="fb",
        value=0.0,
        numerator=count("fb/num", 0, ["f1"], n_la=1),
        denominator=count("fb/den", 30, ["f"], n_la=1),
        text="0",
    )
    assert decide_disclosure({"fb": big}, STANDARD).display("fb") == "0"


def test_a_total_in_another_table_that_differences_out_a_hidden_cell() -> None:
    """Table A shows LA01 = c and LA02 = 40; table B (elsewhere) shows both together: 43."""
    facts: dict[str, Fact] = {
        "A/LA01": count("A/LA01", 3, ["la01"], n_la=1),
        "A/LA02": count("A/LA02", 40, ["la02"], n_la=1),
        "B/both": count("B/both", 43, ["la01", "la02"], n_la=2),
    }
    naive = _only_primary(facts, STANDARD)
    assert attack_published(naive) == ("A/LA01",)
    d = decide_disclosure(facts, STANDARD)
    assert attack_published(d) == () and not _float_attack(d)
    # the aggregate over two LAs is itself LA-level in a small trial: a count of 43 stays
    assert d.status("A/LA01") == "suppressed"
    assert {d.status("A/LA02"), d.status("B/both")} & {"suppressed"}


def test_arm_totals_count_the_las_behind_them() -> None:
    """An arm total over one or two LAs is an LA-level count; over six or more it is not."""
    small_arm = count("arm/lost", 1, ["a", "b"], n_la=2)
    big_arm = count("arm/lost6", 1, ["a", "b", "c", "d", "e", "f"], n_la=6)
    d = decide_disclosure({small_arm.id: small_arm, big_arm.id: big_arm}, STANDARD)
    assert d.display("arm/lost") == SUPPRESSED
    assert d.display("arm/lost6") == "1"
    strict = decide_disclosure({small_arm.id: small_arm, big_arm.id: big_arm}, STRICT)
    assert strict.display("arm/lost6") == SUPPRESSED
    # counts of LAs are never suppressed
    las = count("arm/las", 1, ["las"], n_la=1, people=False)
    assert decide_disclosure({las.id: las}, STRICT).display("arm/las") == "1"


@settings(max_examples=120, deadline=None)
@given(
    values=st.tuples(st.integers(1, 6), st.integers(1, 4)).flatmap(
        lambda s: st.lists(
            st.lists(st.integers(0, 30), min_size=s[1], max_size=s[1]), min_size=s[0], max_size=s[0]
        )
    ),
    shares=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 40)), max_size=4),
    mode=st.sampled_from(["standard", "strict"]),
)
def test_no_suppressed_count_is_recoverable_from_everything_published(values, shares, mode) -> None:
    """Random small LA tables, their totals in a second 'table' and shares of row totals."""
    arr = np.array(values, dtype=np.int64)
    s = DisclosureSettings(mode=mode)
    facts = _table_facts(arr)
    # a second table publishing the first two LAs together (a cross-table total)
    if arr.shape[0] >= 2:
        atoms = [f"x{i}_{j}" for i in range(2) for j in range(arr.shape[1])]
        facts["other/first_two"] = count("other/first_two", arr[:2].sum(), atoms, n_la=2)
    for k, (i, num) in enumerate(shares):
        i %= arr.shape[0]
        den = int(arr[i].sum())
        if den == 0:
            continue
        num = min(num, den)
        facts[f"share/{k}"] = Ratio(
            id=f"share/{k}",
            value=num / den,
            numerator=count(f"share/{k}/num", num, [f"y{k}"], n_la=1),
            denominator=count(
                f"share/{k}/den", den, [f"x{i}_{j}" for j in range(arr.shape[1])], n_la=1
            ),
            text=f"{num / den:.3g}",
        )
    d = decide_disclosure(facts, s)
    # every small count of people is suppressed, every share of one too
    for fid, f in facts.items():
        if any(1 <= c.value < s.threshold and (mode == "strict" or c.n_la < 6) for c in _parts(f)):
            assert d.status(fid) == "suppressed", fid
    assert attack_published(d) == ()
    assert _float_attack(d) == set()


# ---------------------------------------------------------------------------- the pass on a report
def _report(facts: dict[str, Fact], **kw) -> Report:
    ids = list(facts)
    frame = pd.DataFrame({"what": ids, "n": [token(facts[i]) for i in ids]})
    data = pd.DataFrame({"what": ids, "n": [token(facts[i]) for i in ids]})
    table = T.ReportTable(
        id="t", caption="Table", frame=frame, data=data, note="", section="s", facts=facts
    )
    first = facts[ids[0]]
    svg = f"<svg><text>Families: {token(first)}</text></svg>"
    section = Section(
        id="s",
        title="S",
        paragraphs=(f"{token(first)} families took part.",),
        tables=(table,),
        figures=(Figure(id="f", caption="Figure", alt=f"flow: {token(first)}", svg=svg),),
        facts={first.id: first},
    )
    return Report(
        title="t", subtitle="", sections=(section,), disclosure=kw.get("settings", STANDARD)
    )


def test_one_value_everywhere_html_markdown_exports_and_figures() -> None:
    facts: dict[str, Fact] = {
        "small": count("small", 2, ["a"], n_la=1),
        "big": count("big", 40, ["b"], n_la=1),
    }
    out = apply_disclosure(_report(facts))
    s = out.sections[0]
    t = s.tables[0]
    assert list(t.frame["n"]) == [SUPPRESSED, "40"]
    assert list(t.export_frame()["n"]) == [SUPPRESSED, 40]  # typed: a number stays a number
    assert s.paragraphs == ("c families took part.",)
    assert "Families: c" in s.figures[0].svg and s.figures[0].alt == "flow: c"
    assert "1 small count" in t.note
    assert out.disclosure_check["recoverable"] == []
    assert out.disclosure_check["primary"] == ["small"]


def test_undeclared_and_conflicting_numbers_are_refused() -> None:
    a = count("a", 12, ["a"], n_la=1)
    rep = _report({"a": a})
    sec = rep.sections[0]
    bad = Section(id="x", title="X", paragraphs=(token(count("ghost", 3, ["g"], n_la=1)),))
    with pytest.raises(ReportError) as e:
        apply_disclosure(Report(title="t", subtitle="", sections=(sec, bad), disclosure=STANDARD))
    assert "report.disclosure_undeclared" in e.value.codes
    other = Section(id="y", title="Y", facts={"a": count("a", 13, ["a"], n_la=1)})
    with pytest.raises(ReportError) as e:
        apply_disclosure(Report(title="t", subtitle="", sections=(sec, other), disclosure=STANDARD))
    assert "report.disclosure_conflict" in e.value.codes


# ---------------------------------------------------------------------------- a two-LA trial
def _two_la_analysis() -> TrialAnalysis:
    flow = pd.DataFrame(
        [
            ("intervention", "la", "randomised", "", 1),
            ("control", "la", "randomised", "", 1),
            ("intervention", "keyworker", "randomised", "in randomised LAs", 6),
            ("control", "keyworker", "randomised", "in randomised LAs", 7),
            ("intervention", "family", "randomised", "referred in randomised LAs", 24),
            ("control", "family", "randomised", "referred in randomised LAs", 30),
            ("intervention", "family", "consented", "", 22),
            ("control", "family", "consented", "", 28),
            ("intervention", "family", "lost", "not consented", 2),
            ("control", "family", "lost", "not consented", 2),
            ("intervention", "family", "lost", "withdrawn: moved out of area", 1),
            ("control", "family", "lost", "withdrawn: moved out of area", 2),
        ],
        columns=["arm", "level", "stage", "detail", "n"],
    )
    la_counts = pd.DataFrame(
        [("LA01", "intervention", 6, 2, 1, 21), ("LA02", "control", 7, 2, 2, 26)],
        columns=["la_id", "arm", "keyworkers", "not_consented", "withdrew", "continued"],
    )
    exclusions = pd.DataFrame(
        [
            ("consent", "family", "not consented", 4),
            ("follow-up", "family", "withdrawn: moved out of area", 3),
        ],
        columns=["stage", "entity", "reason", "n"],
    )
    protocol = {
        "arms": {"intervention": {"role": "intervention"}, "control": {"role": "control"}},
        "outcomes": [],
    }
    return TrialAnalysis(
        tables={"flow": flow, "la_counts": la_counts, "exclusions": exclusions},
        protocol=protocol,
        methods={},
        provenance={},
        warnings=(),
    )


def test_two_la_trial_does_not_print_arm_totals_of_one_and_two() -> None:
    a = _two_la_analysis()
    tables = (
        T.flow_table(a, STANDARD),
        T.la_count_table(a, STANDARD),
        T.exclusions_table(a, STANDARD),
    )
    rep = Report(
        title="t",
        subtitle="",
        sections=(Section(id="flow", title="2", tables=tables),),
        disclosure=STANDARD,
    )
    out = apply_disclosure(rep)
    flow, la, ex = out.sections[0].tables
    cells = flow.frame[["intervention", "control"]].to_numpy().ravel().tolist()
    people = flow.frame["Level"] != "la"
    shown = flow.frame.loc[people, ["intervention", "control"]].to_numpy().ravel().tolist()
    assert not [c for c in shown if c.isdigit() and 1 <= int(c) < 5], cells
    assert not [c for c in ex.frame["n"] if c.isdigit() and 1 <= int(c) < 5]
    # the same people in Table 2.1 and 2.2 get the same protected value
    assert la.frame.loc[0, "Not consented"] == SUPPRESSED
    assert out.disclosure_check["recoverable"] == []


# ---------------------------------------------------------------------------- the demo report
@pytest.fixture(scope="module")
def demo_reports(demo: DemoResult) -> dict[str, Report]:
    from trialkit.analyse import load_analysis

    a = load_analysis(demo.analysis)
    return {
        mode: build_report(a, generated="t", disclosure=DisclosureSettings(mode=mode))
        for mode in ("standard", "strict")
    }


def _table(rep: Report, tid: str) -> T.ReportTable:
    return next(t for t in rep.tables() if t.id == tid)


def _all_text(rep: Report) -> str:
    parts = [rep.title, rep.subtitle]
    for s in rep.sections:
        parts += [*s.paragraphs, *s.bullets, *s.pre]
        parts += [f.svg + f.alt for f in s.figures]
        for t in s.tables:
            parts.append(t.frame.to_csv())
            parts.append(t.export_frame().to_csv())
    return "\n".join(parts)


@pytest.mark.parametrize("mode", ["standard", "strict"])
def test_demo_report_nothing_recoverable_no_tokens_left(demo_reports, mode) -> None:
    rep = demo_reports[mode]
    assert rep.disclosure_check["recoverable"] == []
    assert rep.disclosure_check["n_facts"] > 150
    assert "⟦" not in _all_text(rep)


def test_demo_shares_no_longer_give_the_la_denominators(demo_reports) -> None:
    rep = demo_reports["standard"]
    detail = " ".join(_table(rep, "contamination").frame["Detail"])
    # LA01's feedback shares were 1/33, 2/33, 1/33: printed as c now
    for leak in ("0.0303", "0.0606", "0.0417"):
        assert leak not in detail
    tidier = " ".join(_table(rep, "tidier").frame.astype(str).to_numpy().ravel())
    # "0 of 1" for an LA whose 2 Champions did not complete: the share of a small count
    assert "LA12 (0 of 1)" not in tidier and "LA12 (c of 1)" in tidier
    la = _table(rep, "la_counts").frame
    assert (la == SUPPRESSED).to_numpy().sum() == 20  # 10 small + 10 complementary
    # the independent attack agrees: nothing recoverable
    assert rep.disclosure_check["recoverable"] == []


def test_demo_strict_mode_applies_to_tables_figure_and_text(demo_reports) -> None:
    rep = demo_reports["strict"]
    flow = _table(rep, "flow").frame
    people = flow["Level"] != "la"
    shown = flow.loc[people, ["intervention", "control"]].to_numpy().ravel().tolist()
    assert SUPPRESSED in shown
    assert not [c for c in shown if c.isdigit() and 1 <= int(c) < 10]
    ex = _table(rep, "exclusions").frame["n"].tolist()
    assert not [c for c in ex if c.isdigit() and 1 <= int(c) < 10]
    svg = next(f for f in rep.figures() if f.id == "flow").svg
    lines = re.findall(r">([^<>]*)</text>", svg)
    people = [x for x in lines if re.search(r"(?i)famil|keyworker", x) and "LAs" not in x]
    assert not [x for x in people if re.search(r": [1-9]$", x)]  # "...: 1" ... "...: 9"
    assert [x for x in people if x.endswith(": c")]
    assert "strict" in _table(rep, "flow").note


def test_a_small_baseline_category_is_not_the_denominator_minus_the_rest() -> None:
    """3 of 48 keyworkers in one category (an attribute: suppressed even in an arm over
    six LAs); the other category, 45 of 48, would give it away."""
    atoms = ["role:a", "role:b"]
    den = count("n", 48, atoms, n_la=6)

    def share(cat: str, n: int) -> Ratio:
        return Ratio(
            id=f"role/{cat}",
            value=n / 48,
            numerator=count(f"role/{cat}/n", n, [f"role:{cat}"], n_la=6, attribute=True),
            denominator=den,
            text=f"{n} ({100 * n / 48:.0f}%)",
            coarse_text=f"about {10 * round(10 * n / 48):.0f}%",
        )

    facts: dict[str, Fact] = {"n": den, "role/a": share("a", 3), "role/b": share("b", 45)}
    d = decide_disclosure(facts, STANDARD)
    assert d.display("role/a") == SUPPRESSED
    assert d.display("role/b") == "about 90%"  # coarsened: 45 of 48 no longer exact
    assert attack_published(d) == () and not _float_attack(d)


def test_two_la_trial_consort_diagram_prints_no_small_count() -> None:
    """The CONSORT boxes (main's consort_flow) print the flow table's facts: arm totals over
    one LA are LA-level counts, so 1-4 people are 'c' in the figure and its alt text too."""
    from trialkit.report.build import _flow_section

    a = _two_la_analysis()
    flow = a.table("flow").copy()
    flow.loc[flow["detail"] == "not consented", "stage"] = "excluded"
    ex = a.table("exclusions").assign(arm="intervention")
    ex = pd.concat(
        [
            pd.DataFrame(
                [
                    ("consent", "family", "not consented", "intervention", 2),
                    ("consent", "family", "not consented", "control", 2),
                    ("follow-up", "family", "withdrawn: moved out of area", "intervention", 1),
                    ("follow-up", "family", "withdrawn: moved out of area", "control", 2),
                ],
                columns=["stage", "entity", "reason", "arm", "n"],
            )
        ]
    )
    a = TrialAnalysis(
        tables={**{k: a.table(k) for k in ("la_counts",)}, "flow": flow, "exclusions": ex},
        protocol=a.protocol,
        methods={},
        provenance={},
        warnings=(),
    )
    sec = _flow_section(a, STANDARD)
    assert sec.facts and "⟦" in sec.figures[0].svg
    out = apply_disclosure(Report(title="t", subtitle="", sections=(sec,), disclosure=STANDARD))
    fig = out.sections[0].figures[0]
    lines = re.findall(r">([^<>]*)</text>", fig.svg)
    people = [x for x in lines if re.search(r"(?i)famil|keyworker", x)]
    assert not [x for x in people if re.search(r": [1-4]$", x)], people
    assert [x for x in people if x.endswith(": c")]
    assert not re.search(r"(?i)(families|keyworkers)[^;,]* [1-4](?=[;,]|$)", fig.alt), fig.alt
    assert out.disclosure_check["recoverable"] == []


@pytest.fixture(scope="module")
def trial16_reports(trial16: DemoResult) -> dict[str, Report]:
    from trialkit.analyse import load_analysis

    a = load_analysis(trial16.analysis)
    return {
        mode: build_report(a, generated="t", disclosure=DisclosureSettings(mode=mode))
        for mode in ("standard", "strict")
    }


def _declared(t: T.ReportTable) -> bool:
    return bool(getattr(t, "facts", None))


@pytest.mark.parametrize("mode", ["standard", "strict"])
@pytest.mark.parametrize("trial", ["demo_reports", "trial16_reports"])
def test_new_numbers_of_people_are_facts_and_nothing_is_recoverable(trial, mode, request) -> None:
    """CONSORT boxes, Table 2.4, n analysed (Tables 1.1, 6.2) and Table F.1 go through the
    pass: every one a declared fact, one value everywhere, nothing recoverable."""
    rep = request.getfixturevalue(trial)[mode]
    check = rep.disclosure_check
    assert check["recoverable"] == []
    assert "⟦" not in _all_text(rep)
    tables = {t.id: t for t in rep.tables()}
    # pass notes only on tables that declare facts: these now do
    for tid in ("missing_outcomes", "outcome_effects", "mdes", "progression"):
        if tid == "progression" and tid not in tables:  # a protocol without criteria
            continue
        assert tables[tid].note.startswith("Disclosure control ("), tid
    flow = tables["flow"].frame
    fig = next(f for f in rep.figures() if f.id == "flow")
    # Table 2.1's consented families and the figure's box are one fact, one printed value
    arms = [c for c in flow.columns if c not in ("Level", "Stage", "Detail")]
    row = flow[(flow["Level"] == "family") & (flow["Stage"] == "consented")]
    for arm in arms:
        assert f"Families consented: {row[arm].iloc[0]}<" in fig.svg
    # n analysed: Table 6.2 = Table 1.1 = the sum of the arms' Table 2.1 cells
    eff = tables["outcome_effects"].frame.set_index("Outcome")["n analysed"]
    mdes = tables["mdes"].frame.set_index("Outcome")["n analysed"]
    for outcome in mdes.index.intersection(eff.index):
        assert mdes[outcome] == eff[outcome]
    ids = {f for f in check["primary"] + check["secondary"] + check["coarsened"]}
    if mode == "strict":
        # strict: no count of people from 1 to 9 anywhere in Table 2.4 or F.1
        for tid in [t for t in ("missing_outcomes", "progression") if t in tables]:
            cells = tables[tid].frame.astype(str).to_numpy().ravel()
            small = [c for c in cells if re.fullmatch(r"[1-9] of \d+|\d+ of [1-9]", c)]
            assert not small, (tid, small)
    assert all(isinstance(i, str) for i in ids)


def test_min_las_for_totals_is_read_from_the_protocol_and_checked() -> None:
    import tomllib
    from pathlib import Path

    from trialkit.protocol import check_protocol, protocol_from_mapping

    path = Path(__file__).resolve().parents[2] / "protocols"
    doc = tomllib.loads((path / "supporting-families-systemic-pilot.toml").read_text("utf-8"))
    doc["analysis"]["disclosure"]["min_las_for_totals"] = 4
    p = protocol_from_mapping(doc)
    assert p.analysis.disclosure.min_las_for_totals == 4
    s = DisclosureSettings.from_mapping(p.analysis.disclosure.model_dump())
    assert s.min_las_for_totals == 4
    assert not [x for x in check_protocol(p).issues if "min_las_for_totals" in x.code]
    for value, words in ((2, "little more than"), (20, "more than the trial's")):
        doc["analysis"]["disclosure"]["min_las_for_totals"] = value
        issues = [
            x
            for x in check_protocol(protocol_from_mapping(doc)).issues
            if x.code == "protocol.analysis.disclosure.min_las_for_totals"
        ]
        assert len(issues) == 1 and issues[0].severity == "warning" and words in issues[0].message
        assert issues[0].path == "analysis.disclosure.min_las_for_totals"
    doc["analysis"]["disclosure"]["min_las_for_totals"] = 0
    with pytest.raises(Exception, match="min_las_for_totals"):
        protocol_from_mapping(doc)
