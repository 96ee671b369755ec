"""Fuzz every CLI verb: no input ends in an internal error or a traceback (issue #16 item 6).

For each verb, hypothesis builds command lines from the verb's own argparse
declaration (so a new option is fuzzed without touching this file): required
options always, optional ones at random, with values drawn from malformed files
(empty, binary, truncated, huge numbers, unicode, wrong types, text where numbers
belong, UK dates, JSON of the wrong shape), directories holding such files, missing
paths, outputs that already exist, and odd option values (negative, NaN, 1e308,
unicode, empty).  Some runs write to a stdout whose reader has gone away (a broken
pipe).  Every run must exit 0, 1 or 2, say something on stderr when it fails, and
never print a traceback or "internal error".

Fast by default (``MAX_EXAMPLES`` per verb); ``pytest -m slow`` runs a bigger search.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trialkit.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
PILOT = ROOT / "protocols" / "supporting-families-systemic-pilot.toml"
CLUSTERS = ROOT / "protocols" / "supporting-families-clusters.csv"

MAX_EXAMPLES = 20
SLOW_EXAMPLES = 150
ALLOWED = {0, 1, 2}
#: how many command lines were run (reported by the summary test at the end of a run)
TRIED: dict[str, int] = {}

# ----------------------------------------------------------------------------- the corpus

_CSV_CLUSTERS = CLUSTERS.read_text(encoding="utf-8")
_TOML = PILOT.read_text(encoding="utf-8")

FILE_CONTENT: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)) * 8,
    "truncated_toml": _TOML[:700].encode(),
    "truncated_csv": _CSV_CLUSTERS[:90].encode(),
    "header_only": b"la_id,arm,y,score,family_id,entity_id,instrument,timepoint\n",
    "huge_numbers": (
        "la_id,arm,y,score,item_1,item_2,imd_score,caseload\n"
        + "".join(
            f"LA{i:02d},{'intervention' if i % 2 else 'control'},1e308,-1e308,"
            f"99999999999999999999999,{-(10**30)},inf,-inf\n"
            for i in range(1, 9)
        )
    ).encode(),
    "unicode": (
        "\ufeffla_id,arm,ÿ,😀,family_id\n"
        + "".join(f"Ł{i},حسن,ﬁ{i},\u202e{i},F{i}\n" for i in range(6))
    ).encode(),
    "wrong_types": (
        "la_id,arm,y,retained,imd_score,date,item_1,entity_id,instrument,timepoint\n"
        + "".join(
            f'LA{i:02d},{"intervention" if i % 2 else "control"},"1,4{i}2",yes,n/k,'
            f"24/02/2025,-,F{i},SCORE-15,baseline\n"
            for i in range(1, 9)
        )
    ).encode(),
    "latin1": "la_id,région\nLA01,Île-de-France\n".encode("latin-1"),
    "json_list": b'[1, 2, "three"]',
    "json_truncated": b'{"tables": {"results": [{"estimate": 1.',
    "toml_types": b'[trial]\ntitle = 3\nstart = "never"\n[[outcomes]]\nid = 5\n',
    "toml_unicode": '[trial]\ntitle = "Ünïcødé 😀"\n[arms.🙂]\n'.encode(),
    "protocol": _TOML.encode(),
    # progression criteria of the wrong types and an unknown metric (trialkit feasibility)
    "toml_progression": (
        _TOML
        + '\n[[progression]]\nid = "x"\nlabel = "y y y"\nmetric = "nope"\ngreen = "high"\n'
        + 'red = 2\n[[progression]]\nid = "z"\nlabel = "z"\nmetric = "ratio"\ngreen = 0.8\n'
        + 'red = 0.5\nparams = { table = "delivery", numerator = "attended" }\n'
    ).encode(),
    "clusters": _CSV_CLUSTERS.encode(),
}
SUFFIXES = (".csv", ".toml", ".json", ".parquet", ".xlsx", "")
#: files a stage directory is read from; filled with malformed content
STAGE_FILES = (
    "allocation.csv",
    "audit.json",
    "clusters.csv",
    "keyworkers.csv",
    "families.csv",
    "measurements.csv",
    "delivery.csv",
    "analysis.json",
    "results.parquet",
    "fidelity_summary.json",
    "manifest.json",
)

ODD_VALUES = (
    "",
    "-1",
    "0",
    "0.5",
    "1.5",
    "3",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "abc",
    "ü😀",
    "1,412",
    "la_id",
    "arm",
    "y",
    "family_functioning",
    "intervention",
    "--",
    "-",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Paths to malformed files and directories, grouped by what they stand for."""
    root = tmp_path_factory.mktemp("fuzz-corpus")
    files: list[str] = []
    for (name, content), suffix in itertools.product(FILE_CONTENT.items(), SUFFIXES):
        p = root / f"{name}{suffix}"
        p.write_bytes(content)
        files.append(str(p))
    dirs: list[str] = []
    for name, content in FILE_CONTENT.items():
        if name in ("protocol", "clusters"):
            continue
        d = root / f"dir-{name}"
        d.mkdir()
        for f in STAGE_FILES:
            (d / f).write_bytes(content)
        dirs.append(str(d))
    empty_dir = root / "dir-nothing"
    empty_dir.mkdir()
    dirs.append(str(empty_dir))
    missing = [str(root / "does-not-exist.csv"), str(root / "nowhere" / "x")]
    return {"files": files, "dirs": dirs, "missing": missing, "valid": [str(PILOT), str(CLUSTERS)]}


# ----------------------------------------------------------------------------- command lines


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


VERBS = sorted(_verbs())


class _Outputs:
    """A new place for each run's outputs, plus outputs that already exist."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="trialkit-fuzz-out-"))
        self.count = itertools.count()
        taken = self.root / "taken"
        taken.mkdir()
        (taken / "notes.txt").write_text("mine\n", encoding="utf-8")
        (self.root / "taken.csv").write_text("mine\n", encoding="utf-8")
        self.existing = [str(taken), str(self.root / "taken.csv"), str(taken / "notes.txt" / "x")]

    def fresh(self, suffix: str) -> str:
        return str(self.root / f"out{next(self.count)}{suffix}")


def _value(
    draw: st.DrawFn, action: argparse.Action, corpus: dict[str, list[str]], outs: _Outputs
) -> str:
    dest = action.dest
    if action.choices and draw(st.integers(0, 9)) > 0:
        return str(draw(st.sampled_from(sorted(map(str, action.choices)))))
    if dest == "out" or dest.endswith("_out"):
        kind = draw(st.sampled_from(["fresh", "fresh", "fresh", "existing"]))
        if kind == "existing":
            return draw(st.sampled_from(outs.existing))
        return outs.fresh(draw(st.sampled_from(["", ".csv", ".parquet", ".txt", ".json"])))
    pools = ["files", "files", "dirs", "missing", "valid", "odd"]
    pool = draw(st.sampled_from(pools))
    if pool == "odd":
        return draw(st.sampled_from(ODD_VALUES))
    return draw(st.sampled_from(corpus[pool]))


def _nargs(draw: st.DrawFn, action: argparse.Action) -> int:
    n = action.nargs
    if isinstance(n, int):
        return n
    if n == "?":
        return draw(st.integers(0, 1))
    if n in ("*", "+"):
        return draw(st.integers(0 if n == "*" else 1, 3))
    return 1


def _args_for(
    draw: st.DrawFn,
    parser: argparse.ArgumentParser,
    corpus: dict[str, list[str]],
    outs: _Outputs,
    path: tuple[str, ...],
) -> list[str]:
    argv: list[str] = []
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            if draw(st.integers(0, 40)) == 0:
                argv.append(action.option_strings[0])
            continue
        if isinstance(action, argparse._SubParsersAction):
            name = draw(st.sampled_from(sorted(action.choices)))
            rest = _args_for(draw, action.choices[name], corpus, outs, (*path, name))
            return [*argv, *positionals, name, *rest]
        if not action.option_strings:  # positional
            positionals += [_value(draw, action, corpus, outs) for _ in range(_nargs(draw, action))]
            continue
        if not action.required and draw(st.integers(0, 2)) > 0:
            continue  # most optional options are left out
        flag = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:
            argv.append(flag)
            continue
        values = [_value(draw, action, corpus, outs) for _ in range(max(1, _nargs(draw, action)))]
        argv += [flag, *values]
    return _keep_it_quick(draw, path, [*argv, *positionals], corpus)


def _keep_it_quick(
    draw: st.DrawFn, path: tuple[str, ...], argv: list[str], corpus: dict[str, list[str]]
) -> list[str]:
    """Bound the runs that would be long on valid input (the demo, simulated power)."""
    if path == ("demo",):  # the full pipeline takes a minute: always give it a broken input
        argv += ["--clusters", draw(st.sampled_from(corpus["files"]))]
    if path == ("power", "simulate"):
        argv = [a for a in argv if a not in ("dask",)]
        argv += ["--reps", draw(st.sampled_from(["2", "3", "-1", "abc"])), "--backend", "local"]
        argv += ["--clusters", draw(st.sampled_from(["4", "6", "-2", "nan", "x"]))]
        argv += ["--units-per-cluster", draw(st.sampled_from(["2", "5", "0", "1e308"]))]
    return argv


@st.composite
def command_lines(
    draw: st.DrawFn, verb: str, corpus: dict[str, list[str]], outs: _Outputs
) -> tuple[list[str], bool]:
    argv = [verb, *_args_for(draw, _verbs()[verb], corpus, outs, (verb,))]
    broken_pipe = draw(st.integers(0, 4)) == 0
    return argv, broken_pipe


@st.composite
def subcommand_lines(
    draw: st.DrawFn, verb: str, subcommand: str, corpus: dict[str, list[str]], outs: _Outputs
) -> tuple[list[str], bool]:
    """Command lines of one subcommand (``power progression``), fuzzed on its own."""
    sub = next(
        a for a in _verbs()[verb]._actions if isinstance(a, argparse._SubParsersAction)
    ).choices[subcommand]
    argv = [verb, subcommand, *_args_for(draw, sub, corpus, outs, (verb, subcommand))]
    return argv, draw(st.integers(0, 4)) == 0


# ----------------------------------------------------------------------------- running


class _ClosedPipe(io.TextIOBase):
    """A stdout whose reader has gone away: every write raises ``BrokenPipeError``."""

    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file descriptor")


@contextlib.contextmanager
def _cli_io(broken_pipe: bool) -> Iterator[tuple[io.StringIO | _ClosedPipe, io.StringIO]]:
    out: io.StringIO | _ClosedPipe = _ClosedPipe() if broken_pipe else io.StringIO()
    err = io.StringIO()
    with (
        contextlib.redirect_stdout(out),  # type: ignore[type-var]
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("default")  # as on the command line: printed, never raised
        yield out, err


def run_cli(argv: list[str], broken_pipe: bool) -> tuple[int, str]:
    with _cli_io(broken_pipe) as (_out, err):
        code = main(argv)
    return code, err.getvalue()


def check_run(verb: str, argv: list[str], broken_pipe: bool) -> None:
    TRIED[verb] = TRIED.get(verb, 0) + 1
    code, err = run_cli(argv, broken_pipe)
    where = f"trialkit {' '.join(argv)}{' | (closed pipe)' if broken_pipe else ''}"
    assert code in ALLOWED, f"{where}\nexit {code}\n{err}"
    assert "Traceback" not in err and "internal error" not in err, f"{where}\n{err}"
    if code != 0:
        assert err.strip(), f"{where}: exit {code} without a message on stderr"


def _fuzz(verb: str, corpus: dict[str, list[str]], n: int, subcommand: str | None = None) -> None:
    outs = _Outputs()
    try:

        @settings(
            max_examples=n,
            deadline=None,
            derandomize=n <= MAX_EXAMPLES,  # the default run is the same on every machine
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(
            case=command_lines(verb, corpus, outs)
            if subcommand is None
            else subcommand_lines(verb, subcommand, corpus, outs)
        )
        def run(case: tuple[list[str], bool]) -> None:
            check_run(verb, *case)

        work = outs.root / "cwd"
        work.mkdir()
        with contextlib.chdir(work):  # a relative path among the values lands here
            run()
    finally:
        shutil.rmtree(outs.root, ignore_errors=True)


@pytest.mark.parametrize("verb", VERBS)
def test_fuzz_verb(verb: str, corpus: dict[str, list[str]]) -> None:
    _fuzz(verb, corpus, MAX_EXAMPLES)


#: subcommands fuzzed on their own as well (their verb's run draws them only now and then)
SUBCOMMANDS = [("power", "progression")]


@pytest.mark.parametrize(("verb", "subcommand"), SUBCOMMANDS)
def test_fuzz_subcommand(verb: str, subcommand: str, corpus: dict[str, list[str]]) -> None:
    _fuzz(verb, corpus, MAX_EXAMPLES, subcommand)


@pytest.mark.slow
@pytest.mark.parametrize("verb", VERBS)
def test_fuzz_verb_long(verb: str, corpus: dict[str, list[str]]) -> None:
    _fuzz(verb, corpus, SLOW_EXAMPLES)


def test_closed_pipe_on_help_and_errors(corpus: dict[str, list[str]]) -> None:
    """``--help`` and a JSON error report into a closed pipe end quietly."""
    assert run_cli(["validate", "--help"], True)[0] == 0
    code, err = run_cli(["check", corpus["files"][1], "--format", "json"], True)
    assert code in {0, 1} and "Traceback" not in err


def test_every_verb_is_fuzzed() -> None:
    assert {
        "simulate",
        "validate",
        "report",
        "randomise",
        "score",
        "init",
        "cace",
        "feasibility",
    } <= set(VERBS)


def test_harness_catches_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The checks above would fail on a crash: a verb that raises a bare exception exits 3."""
    import trialkit.cli.cmd_schema as cmd_schema

    def crash(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(cmd_schema, "run", crash)
    with pytest.raises(AssertionError, match="exit 3"):
        check_run("schema", ["schema"], False)


@pytest.fixture(scope="module", autouse=True)
def _count_report() -> Iterator[None]:
    """Print how many command lines were tried (seen with ``pytest -s``)."""
    yield
    total = sum(TRIED.values())
    print(f"\nfuzzed {total} command lines over {len(TRIED)} verbs: {dict(sorted(TRIED.items()))}")
