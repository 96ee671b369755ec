"""``trialkit randomise``: allocate clusters to arms and write an audit record."""

from __future__ import annotations

import argparse
from typing import Any

from trialkit.cli._common import add_format, emit

NAME = "randomise"
HELP = "Randomise clusters (simple, stratified, matched or constrained) with a verifiable audit record."
EXAMPLE = [
    "trialkit randomise clusters.csv --id-column la_id --method constrained "
    "--covariates region,imd_score,families_referred_2023 --cutoff 0.1 --seed 20260401 --out alloc/",
    "trialkit randomise --protocol protocols/supporting-families-systemic-pilot.toml "
    "protocols/supporting-families-clusters.csv --seed 20260401 --out alloc/",
]


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _mapping(text: str, flag: str = "--weights") -> dict[str, float]:
    from trialkit.errors import UsageError

    out: dict[str, float] = {}
    for item in _list(text):
        key, sep, value = item.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"{flag} must look like name=1,other=2; got {text!r}")
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "clusters",
        metavar="CLUSTERS",
        help="clusters file (CSV, Parquet or Excel), one row per cluster",
    )
    parser.add_argument(
        "--protocol", metavar="P", help="take settings from the protocol's [randomisation] table"
    )
    parser.add_argument("--id-column", help="cluster id column (default la_id)")
    parser.add_argument("--method", choices=["simple", "stratified", "matched", "constrained"])
    parser.add_argument("--strata", help="comma-separated stratum columns")
    parser.add_argument(
        "--covariates", help="comma-separated covariates (string columns are categorical)"
    )
    parser.add_argument("--weights", help="covariate weights, e.g. imd_score=2,region=1")
    parser.add_argument(
        "--limits",
        help="per-covariate limits on the absolute standardised difference in arm means "
        "(as cvcrand's cvrcov), e.g. imd_score=0.3,families_referred_2023=0.5",
    )
    parser.add_argument("--metric", choices=["l1", "l2"])
    keep = parser.add_mutually_exclusive_group()
    keep.add_argument(
        "--cutoff", type=float, help="fraction of best-balanced allocations kept (default 0.1)"
    )
    keep.add_argument("--keep", type=int, help="number of best-balanced allocations kept")
    parser.add_argument(
        "--arms", help="comma-separated arm names, first = 'treated' (default intervention,control)"
    )
    parser.add_argument("--ratio", help="allocation ratio, e.g. 1:1 or 2:1")
    parser.add_argument("--seed", type=int, required=True, help="seed of numpy's PCG64 generator")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="new output directory (never overwritten)"
    )
    add_format(parser)


def settings_from_args(args: argparse.Namespace) -> Any:
    """Build RandomisationSettings from the protocol (if any) and command-line overrides.

    With ``--protocol`` the protocol's declared covariate types and levels and
    ``trial.n_clusters`` come with its ``[randomisation]`` table
    (:meth:`RandomisationSettings.from_protocol`).
    """
    from trialkit.errors import UsageError
    from trialkit.randomise import RandomisationSettings

    overrides: dict[str, Any] = {
        "id_column": args.id_column,
        "method": args.method,
        "strata": None if args.strata is None else _list(args.strata),
        "covariates": None if args.covariates is None else _list(args.covariates),
        "weights": None if args.weights is None else _mapping(args.weights),
        "limits": None if args.limits is None else _mapping(args.limits, "--limits"),
        "metric": args.metric,
        "arms": None if args.arms is None else _list(args.arms),
    }
    if args.ratio is not None:
        try:
            overrides["ratio"] = [int(x) for x in args.ratio.split(":")]
        except ValueError as err:
            raise UsageError(f"--ratio must look like 1:1 or 2:1; got {args.ratio!r}") from err
    overrides = {k: v for k, v in overrides.items() if v is not None}
    # --cutoff and --keep are exclusive: the one given replaces both protocol values.
    if args.cutoff is not None:
        overrides.update(cutoff=args.cutoff, keep=None)
    if args.keep is not None:
        overrides.update(keep=args.keep, cutoff=None)
    if args.protocol:
        from trialkit.protocol import load_protocol

        protocol = load_protocol(args.protocol)
        if protocol.randomisation is None and "method" not in overrides:
            raise UsageError(
                f"protocol {args.protocol} has no [randomisation] table; pass --method etc."
            )
        return RandomisationSettings.from_protocol(protocol, overrides)
    if "method" not in overrides:
        raise UsageError("--method is required unless --protocol gives one")
    return RandomisationSettings.from_mapping(overrides)


def run(args: argparse.Namespace) -> int:
    import warnings

    from trialkit.errors import TrialkitWarning
    from trialkit.randomise import randomise, read_clusters, write_allocation
    from trialkit.randomise.audit import check_output_dir

    check_output_dir(args.out)
    settings = settings_from_args(args)
    frame = read_clusters(args.clusters, settings.id_column)
    with warnings.catch_warnings():
        # warnings are recorded on the allocation and printed once in its summary
        warnings.simplefilter("ignore", TrialkitWarning)
        allocation = randomise(frame, settings, seed=args.seed)
    record = write_allocation(
        allocation, args.out, clusters_path=args.clusters, protocol_path=args.protocol
    )
    emit(
        {"ok": True, "out": str(args.out), "audit": record},
        allocation.summary()
        + f"\nwritten to {args.out} (outputs SHA-256 {record['outputs_sha256']})",
        args.format,
    )
    return 0
