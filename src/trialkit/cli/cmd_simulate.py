"""``trialkit simulate``: generate a complete synthetic trial dataset from the protocol."""

from __future__ import annotations

import argparse
import json

from trialkit.cli._common import add_format, emit

NAME = "simulate"
HELP = (
    "Simulate a synthetic trial (clusters, keyworkers, families, item-level measurements, "
    "delivery records) with known effects, ICCs and fidelity, plus truth.json."
)
EXAMPLE = [
    "trialkit simulate --protocol protocol.toml --clusters clusters.csv --allocation allocation/ "
    "--seed 2024 --out synthetic/",
    "trialkit simulate --protocol protocol.toml --clusters clusters.csv --seed 1 --out synthetic/ "
    "--format json",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True, help="protocol TOML file")
    parser.add_argument("--clusters", required=True, help="clusters CSV (la_id + covariates)")
    parser.add_argument(
        "--allocation",
        default=None,
        help="allocation directory (allocation.csv); "
        "without it LAs are allocated by simple 1:1 randomisation with --seed",
    )
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--out", required=True, help="new output directory")
    parser.add_argument("--table-format", choices=["parquet", "csv"], default="parquet")
    parser.add_argument(
        "--families-per-keyworker",
        type=float,
        default=5.0,
        help="mean families per keyworker, in [0, 1000] (default 5)",
    )
    parser.add_argument(
        "--keyworkers", type=float, default=None, help="mean keyworkers per LA (a positive number)"
    )
    parser.add_argument(
        "--effect",
        action="append",
        default=[],
        metavar="OUTCOME=SMD",
        help="treatment effect on a protocol outcome in SD units of its latent scale, "
        "positive = benefit (in the outcome's 'better' direction: family_functioning=0.3 "
        'lowers SCORE-15 scores when better = "lower"); for keyworker_retention a log odds '
        "ratio, positive = more keyworkers stay; repeatable (default 0.3 benefit on each outcome)",
    )
    parser.add_argument(
        "--fidelity",
        type=float,
        default=None,
        help="delivered fidelity of every intervention LA, in [0, 1] (default drawn U(0.6, 1))",
    )
    parser.add_argument(
        "--contamination",
        type=float,
        default=0.05,
        help="probability that a control LA delivers each element, in [0, 1] (default 0.05)",
    )
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    from trialkit.errors import UsageError
    from trialkit.protocol.load import load_protocol
    from trialkit.simulate.trial import simulate_trial
    from trialkit.store import read_allocation, read_table

    protocol = load_protocol(args.protocol)
    clusters = read_table(args.clusters, ("la_id",)).astype(object)
    clusters = clusters.where(clusters.notna(), None)
    inputs = {"protocol": args.protocol, "clusters": args.clusters}
    allocation = None  # simple 1:1 randomisation with --seed (simulate.random_allocation)
    if args.allocation:
        record = read_allocation(args.allocation)
        allocation = record.frame
        inputs["allocation"] = str(record.path)
    effects: dict[str, float] = {}
    for item in args.effect:
        key, sep, value = item.partition("=")
        try:
            effects[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError.from_problem(
                path="--effect",
                code="cli.bad_effect",
                message=f"--effect must be OUTCOME=NUMBER; got {item!r}",
                hint="e.g. --effect family_functioning=0.4 (positive = benefit)",
            )
    st = simulate_trial(
        protocol,
        clusters,
        allocation,
        seed=args.seed,
        n_keyworkers=args.keyworkers,
        families_per_keyworker=args.families_per_keyworker,
        effects=effects or None,
        fidelity=args.fidelity,
        contamination=args.contamination,
    )
    st.save(args.out, fmt=args.table_format, inputs=inputs)
    emit(
        json.dumps({"ok": True, "out": args.out, **st.to_dict()}, indent=2, default=str) + "\n",
        st.summary() + f"\nwritten to {args.out}\n",
        args.format,
    )
    return 0
