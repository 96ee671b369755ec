"""``trialkit cace``: complier average causal effect by 2SLS with CR2 standard errors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

NAME = "cace"
HELP = (
    "Estimate the complier average causal effect (randomised arm instrumenting receipt, CR2 "
    "standard errors, Satterthwaite df), optionally across compliance thresholds."
)
EXAMPLE = [
    "trialkit cace --protocol protocol.toml --data data/ --allocation allocation/ "
    "--outcome family_functioning --fidelity fidelity/",
    "trialkit cace --protocol protocol.toml --data data/ --allocation allocation/ "
    "--outcome family_functioning --analysis-frame frame.csv --thresholds 0.5 0.6 0.7 0.8 "
    "--out cace/ --format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="protocol TOML file")
    parser.add_argument("--data", required=True, help="validated data directory")
    parser.add_argument("--allocation", required=True, help="allocation directory")
    parser.add_argument("--outcome", required=True, help="outcome id declared in the protocol")
    parser.add_argument(
        "--fidelity",
        help="output directory of 'trialkit fidelity' (default: assess fidelity from --data)",
    )
    parser.add_argument(
        "--analysis-frame",
        help="CSV/Parquet with one row per analysed unit: la_id, arm, y (the outcome), "
        "optional keyworker_id and covariates (used when the data package cannot build it)",
    )
    parser.add_argument("--outcome-column", default=None, help="outcome column in the frame")
    parser.add_argument(
        "--threshold", type=float, default=None, help="override the compliance threshold"
    )
    parser.add_argument(
        "--thresholds",
        type=float,
        nargs="+",
        default=None,
        help="also estimate across these thresholds (default with --sweep: the protocol's)",
    )
    parser.add_argument("--sweep", action="store_true", help="sweep the protocol's thresholds")
    parser.add_argument(
        "--covariates",
        nargs="*",
        default=None,
        help="covariate columns (default: protocol's present in frame)",
    )
    parser.add_argument("--out", default=None, help="new directory for JSON/CSV/plot outputs")
    parser.add_argument("--format", choices=["text", "json"], default="text", help="output format")


def _load_fidelity(path_dir: str) -> Any:
    """The report written by ``trialkit fidelity --out DIR``."""
    from trialkit.errors import FidelityError
    from trialkit.fidelity import FidelityReport

    path = Path(path_dir) / "fidelity_summary.json"
    if not path.is_file():
        raise FidelityError.from_problem(
            path=str(path),
            code="cace.fidelity_missing",
            message=f"'{path}' must exist (written by 'trialkit fidelity')",
            hint="run 'trialkit fidelity ... --out DIR' and pass --fidelity DIR",
        )
    return FidelityReport.from_dict(json.loads(path.read_text(encoding="utf-8"))["report"])


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    """Protocol, fidelity report, analysis frame and outcome column.

    Without ``--analysis-frame`` the data directory is validated once and its tables
    serve both the analysis frame and (without ``--fidelity``) the fidelity assessment.
    """
    from trialkit.cli.cmd_fidelity import assess
    from trialkit.fidelity import assess_fidelity
    from trialkit.fidelity._read import read_table
    from trialkit.protocol.load import load_protocol

    report = _load_fidelity(args.fidelity) if args.fidelity else None
    if args.analysis_frame:
        if report is None:
            protocol, report = assess(args)
        else:
            protocol = load_protocol(args.protocol)
        frame = read_table(args.analysis_frame)
    else:  # the data stage's validator and frame builder
        from trialkit.data import analysis_frame, validate

        protocol = load_protocol(args.protocol)
        trial = validate(protocol, args.data, args.allocation)
        trial.raise_for_errors()
        if report is None:
            t = trial.tables
            report = assess_fidelity(
                protocol,
                t["delivery"],
                t["keyworkers"],
                t["families"],
                t["allocation"],
                clusters=t.get("clusters"),
                sources={
                    k: trial.files[k]
                    for k in ("delivery", "keyworkers", "families", "allocation")
                    if k in trial.files
                },
            )
        frame = analysis_frame(trial, protocol, args.outcome).frame
    col = args.outcome_column or ("y" if "y" in frame.columns else args.outcome)
    return protocol, report, frame, col


def run(args: argparse.Namespace) -> int:
    from trialkit._io import provenance, write_frame, write_json
    from trialkit.fidelity import cace_sweep, estimate_cace
    from trialkit.fidelity.outputs import ensure_new_output_dir
    from trialkit.fidelity.plots import sweep_figure
    from trialkit.plotting import write_figure

    out = Path(args.out) if args.out else None
    if out is not None:
        ensure_new_output_dir(out)
    protocol, report, frame, ycol = _inputs(args)
    if "arm" not in frame.columns and "la_id" in frame.columns:
        arms = report.overall.set_index("la_id")["arm"]
        frame = frame.assign(arm=frame["la_id"].astype(str).map(arms))
    if args.covariates is None:
        covs = [c for c in protocol.analysis.covariates if c in frame.columns]
        if (
            protocol.analysis.adjust_for_baseline
            and "baseline" in frame.columns
            and frame["baseline"].notna().any()
        ):
            covs.append("baseline")
    else:
        covs = list(args.covariates)
    common = dict(
        fidelity=report,
        protocol=protocol,
        outcome=ycol,
        outcome_id=args.outcome,
        covariates=covs,
    )
    result = estimate_cace(frame, threshold=args.threshold, **common)
    sweep = None
    ths = args.thresholds
    if ths is None and args.sweep and protocol.analysis.compliance is not None:
        ths = list(protocol.analysis.compliance.thresholds)
    if ths:
        sweep = cace_sweep(frame, thresholds=ths, **common)
    files: list[str] = []
    if out is not None:
        write_frame(out / "cace.csv", result.to_frame())
        files.append("cace.csv")
        figures: dict[str, Any] = {}
        if sweep is not None:
            write_frame(out / "cace_sweep.csv", sweep.to_frame())
            files.append("cace_sweep.csv")
            fig, alt = sweep_figure(sweep.to_frame(), outcome=args.outcome, scale=result.scale)
            write_figure(fig, out / "cace_sweep", title="CACE by compliance threshold", desc=alt)
            files += ["cace_sweep.png", "cace_sweep.svg"]
            figures["cace_sweep"] = {"files": ["cace_sweep.png", "cace_sweep.svg"], "alt_text": alt}
        inputs = {"protocol": args.protocol, "data": args.data, "allocation": args.allocation}
        if args.fidelity:
            inputs["fidelity"] = args.fidelity
        if args.analysis_frame:
            inputs["analysis_frame"] = args.analysis_frame
        write_json(
            out / "cace.json",
            {
                "ok": True,
                "result": result.to_dict(),
                "sweep": None if sweep is None else sweep.to_dict(),
                "figures": figures,
                "files": [*files, "cace.json"],
                "provenance": provenance(inputs=inputs, seed=None),
            },
        )
        files.append("cace.json")
    if args.format == "json":
        payload = {
            "ok": True,
            "result": result.to_dict(),
            "sweep": None if sweep is None else sweep.to_dict(),
            "files": files,
        }
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(result.summary() + "\n")
        if sweep is not None:
            sys.stdout.write(sweep.summary() + "\n")
    return 0
