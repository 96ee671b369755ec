"""``trialkit cace``: complier average causal effect by 2SLS with CR2 standard errors."""

from __future__ import annotations

import argparse
from typing import Any

from trialkit.cli._common import (
    add_allocation,
    add_allow_unverified,
    add_data,
    add_format,
    add_out,
    add_protocol,
    emit,
    warn_unverified,
)

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
    add_protocol(parser)
    add_data(parser)
    add_allocation(parser)
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
    add_out(parser, help="new directory for JSON/CSV/plot outputs")
    add_allow_unverified(parser)
    add_format(parser, help="output format")


def _inputs(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """Protocol, fidelity report and analysis frame named on the command line.

    Without ``--analysis-frame`` the data directory is validated once and its tables
    serve both the analysis frame and (without ``--fidelity``) the fidelity assessment.
    """
    from trialkit.cli.cmd_fidelity import assess
    from trialkit.fidelity._read import read_table
    from trialkit.fidelity.compliance import compliance_inputs
    from trialkit.fidelity.outputs import read_fidelity_report
    from trialkit.protocol.load import load_protocol

    report = read_fidelity_report(args.fidelity) if args.fidelity else None
    if args.analysis_frame:
        if report is None:
            protocol, report = assess(args)
        else:
            protocol = load_protocol(args.protocol)
        return protocol, report, read_table(args.analysis_frame)
    from trialkit import store
    from trialkit.data import validate

    protocol = load_protocol(args.protocol)
    allocation: Any = args.allocation
    if store.locate_allocation(allocation).is_file():
        allocation = store.read_allocation(
            allocation, keep_default_na=False, allow_unverified=args.allow_unverified
        )
        warn_unverified(allocation.check)
    trial = validate(protocol, args.data, allocation)
    trial.raise_for_errors()
    report, frame = compliance_inputs(trial, protocol, args.outcome, fidelity=report)
    return protocol, report, frame


def run(args: argparse.Namespace) -> int:
    from trialkit.fidelity.compliance import analyse_compliance, write_compliance_outputs
    from trialkit.fidelity.outputs import ensure_new_output_dir

    if args.out:
        ensure_new_output_dir(args.out)
    protocol, report, frame = _inputs(args)
    analysis = analyse_compliance(
        frame,
        report,
        protocol,
        outcome_id=args.outcome,
        outcome_column=args.outcome_column,
        threshold=args.threshold,
        thresholds=args.thresholds,
        sweep=args.sweep,
        covariates=args.covariates,
    )
    files: list[str] = []
    if args.out:
        inputs = {"protocol": args.protocol, "data": args.data, "allocation": args.allocation}
        if args.fidelity:
            inputs["fidelity"] = args.fidelity
        if args.analysis_frame:
            inputs["analysis_frame"] = args.analysis_frame
        files = write_compliance_outputs(analysis, args.out, inputs=inputs)
    d = analysis.to_dict()
    payload = {"ok": True, "result": d["result"], "sweep": d["sweep"], "files": files}
    emit(payload, analysis.summary(), args.format)
    return 0
