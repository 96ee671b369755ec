"""``trialkit power mdes|power|clusters|simulate|progression``: analytic and simulated power."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from trialkit.cli._common import add_alpha, add_format, add_out, add_seed, emit, refuse_existing
from trialkit.errors import PowerError, UsageError

NAME = "power"
HELP = (
    "Power, minimum detectable effect size and required clusters (analytic or simulated); "
    "pilot size for progression criteria."
)
EXAMPLE = [
    "trialkit power mdes --levels 3 --clusters 12 --subclusters-per-cluster 10 "
    "--units-per-subcluster 12 --icc-cluster 0.05 --icc-subcluster 0.1 --format json",
    "trialkit power power --levels 2 --clusters 20 --units-per-cluster 25 --icc-cluster 0.1 "
    "--effect 0.4",
    "trialkit power clusters --levels 2 --units-per-cluster 30 --icc-cluster 0.05 "
    "--outcome binary --proportions 0.3,0.45",
    "trialkit power simulate --config simulations/pilot-12-la.toml --out power-sim",
    "trialkit power progression --red 0.5 --green 0.75 --icc 0.05 --cluster-size 10 --format json",
]


def _design_arguments(p: argparse.ArgumentParser, *, simulate: bool = False) -> None:
    g = p.add_argument_group("design")
    g.add_argument(
        "--levels",
        type=int,
        choices=(2, 3),
        default=None,
        help="2: clusters of units; 3: clusters of subclusters of units (default 2)",
    )
    g.add_argument("--clusters", type=int, help="number of randomised clusters (J or K)")
    g.add_argument("--units-per-cluster", type=float, help="2 levels: mean units per cluster n")
    g.add_argument(
        "--subclusters-per-cluster", type=float, help="3 levels: subclusters per cluster J"
    )
    g.add_argument("--units-per-subcluster", type=float, help="3 levels: units per subcluster n")
    g.add_argument("--icc-cluster", type=float, help="ICC of the randomised level (ρ or ρ3)")
    g.add_argument("--icc-subcluster", type=float, help="3 levels: ICC of the middle level ρ2")
    g.add_argument("--r2-unit", type=float, help="variance share explained at the unit level")
    g.add_argument(
        "--r2-subcluster", type=float, help="variance share explained at the middle level"
    )
    g.add_argument("--r2-cluster", type=float, help="variance share explained at the cluster level")
    g.add_argument("--cluster-covariates", type=int, help="number of cluster-level covariates g*")
    g.add_argument("--treated-fraction", type=float, help="fraction of clusters treated (0.5)")
    g.add_argument("--cv", type=float, help="coefficient of variation of cluster sizes (0)")
    g.add_argument(
        "--cv-method",
        choices=("eldridge", "van-breukelen"),
        help="unequal-size correction (default eldridge)",
    )
    g.add_argument("--outcome", choices=("continuous", "binary"), help="outcome type")
    g.add_argument("--proportions", help="binary: p_control,p_intervention (proportion scale)")
    g.add_argument("--test", choices=("t", "z"), help="binary: t with J−2 df (default) or z")
    t = p.add_argument_group("test")
    add_alpha(t)
    t.add_argument("--one-tailed", action="store_true", help="one-tailed test")
    t.add_argument("--effect", type=float, help="effect size in SD units")
    if not simulate:
        t.add_argument("--power", type=float, default=None, help="target power (0.8)")
        t.add_argument(
            "--multiplier",
            choices=("exact", "powerup"),
            default="exact",
            help="exact: noncentral t inversion (default); powerup: t quantiles summed",
        )
    add_format(p, help="output format")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="power_command", metavar="<what>", required=True, parser_class=type(parser)
    )
    for name, helptext in (
        ("mdes", "minimum detectable effect size with its confidence interval"),
        ("power", "power to detect --effect (binary: --proportions)"),
        ("clusters", "smallest number of clusters reaching --power for --effect"),
    ):
        sp = sub.add_parser(name, help=helptext, description=helptext)
        _design_arguments(sp)
    sp = sub.add_parser(
        "simulate",
        help="power by simulating and analysing replicates",
        description="Power by simulation: each replicate is generated from its "
        "own seed and analysed; a TOML --config runs a grid of scenarios.",
    )
    _design_arguments(sp, simulate=True)
    s = sp.add_argument_group("simulation")
    s.add_argument("--reps", type=int, help="replicates per scenario (1000)")
    add_seed(s, help="master seed (1)")
    s.add_argument(
        "--method",
        choices=("lmm", "cluster-level"),
        help="analysis of each replicate (cluster-level)",
    )
    s.add_argument(
        "--df-method",
        choices=("kenward-roger", "satterthwaite", "between-within", "residual"),
        help="denominator df for --method lmm (kenward-roger)",
    )
    s.add_argument("--backend", choices=("local", "dask"), default="local")
    s.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    s.add_argument(
        "--workers",
        type=int,
        help="worker processes: local backend, every core by default; "
        "dask without --scheduler, the local cluster's workers (2)",
    )
    s.add_argument("--chunk-size", type=int, default=250, help="replicates per batch (250)")
    s.add_argument("--config", help="TOML file with [defaults], [grid] and [[scenarios]]")
    add_out(s, help="directory for results.json, results.csv and plots (new)")
    _progression_arguments(sub)


def _progression_arguments(sub: Any) -> None:
    helptext = (
        "pilot size to reject 'red' when 'green' holds (one-sided; Lewis et al. 2021), "
        "inflated by the design effect for a cluster pilot"
    )
    sp = sub.add_parser("progression", help=helptext, description=helptext)
    g = sp.add_argument_group("criterion")
    g.add_argument("--red", type=float, required=True, help="red limit, a proportion (e.g. 0.5)")
    g.add_argument(
        "--green",
        type=float,
        required=True,
        help="green limit; above red: higher is better, below: lower is better",
    )
    add_alpha(g, help="one-sided significance level (0.05)")
    g.add_argument("--power", type=float, default=None, help="target power at green (0.9)")
    from trialkit.power.progression import PROGRESSION_VARIANTS

    g.add_argument(
        "--variant",
        choices=PROGRESSION_VARIANTS,
        default="lewis-2021",
        help="lewis-2021: round(n0 + 1/Δ), reproduces the paper (default); normal-cc: "
        "ceil of the continuity-corrected size; normal: ceil(n0)",
    )
    c = sp.add_argument_group("cluster pilot")
    c.add_argument("--icc", type=float, help="ICC ρ of the criterion's outcome")
    c.add_argument("--cluster-size", type=float, help="mean individuals per cluster m")
    add_format(sp, help="output format")


_DESIGN_FLAGS = {
    "levels": "levels",
    "clusters": "clusters",
    "units_per_cluster": "units_per_cluster",
    "subclusters_per_cluster": "subclusters_per_cluster",
    "units_per_subcluster": "units_per_subcluster",
    "icc_cluster": "icc_cluster",
    "icc_subcluster": "icc_subcluster",
    "r2_unit": "r2_unit",
    "r2_subcluster": "r2_subcluster",
    "r2_cluster": "r2_cluster",
    "cluster_covariates": "cluster_covariates",
    "treated_fraction": "treated_fraction",
    "cv": "cv",
    "cv_method": "cv_method",
    "outcome": "outcome",
    "test": "test",
}


def _design_settings(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for flag, key in _DESIGN_FLAGS.items():
        v = getattr(args, flag, None)
        if v is not None:
            kw[key] = v
    if args.proportions is not None:
        parts = [x.strip() for x in args.proportions.split(",")]
        try:
            vals = [float(x) for x in parts if x]
        except ValueError:
            raise UsageError(
                f"--proportions must be p_control,p_intervention; got {args.proportions!r}."
            ) from None
        if len(vals) == 1:
            vals.append(math.nan)
        if len(vals) != 2:
            raise UsageError(
                f"--proportions must be p_control,p_intervention; got {args.proportions!r}."
            )
        kw["proportions"] = (vals[0], vals[1])
    if kw.get("outcome") == "binary" and "proportions" not in kw:
        raise PowerError.from_problem(
            path="--proportions",
            code="power.proportions_missing",
            message="`--proportions` must be given with --outcome binary.",
            hint="e.g. --proportions 0.3,0.45 (control, intervention).",
        )
    return kw


def _check_levels(kw: dict[str, Any]) -> None:
    levels = kw.get("levels", 2)
    wrong: list[str]
    if levels == 2:
        wrong = [
            k
            for k in (
                "subclusters_per_cluster",
                "units_per_subcluster",
                "icc_subcluster",
                "r2_subcluster",
            )
            if k in kw
        ]
        need = "--units-per-cluster"
    else:
        wrong = [k for k in ("units_per_cluster",) if k in kw]
        need = "--subclusters-per-cluster and --units-per-subcluster"
    if wrong:
        raise UsageError(
            f"--{wrong[0].replace('_', '-')} does not apply to a {levels}-level design; use {need}."
        )


def run(args: argparse.Namespace) -> int:
    if args.power_command == "simulate":
        return _run_simulate(args)
    if args.power_command == "progression":
        return _run_progression(args)
    from trialkit.power.analytic import (
        CRTDesign,
        analytic_mdes,
        analytic_power,
        required_clusters,
    )

    kw = _design_settings(args)
    _check_levels(kw)
    design = CRTDesign(**kw)
    common = {
        "alpha": 0.05 if args.alpha is None else args.alpha,
        "two_tailed": not args.one_tailed,
        "multiplier": args.multiplier,
    }
    target = 0.8 if args.power is None else args.power
    if args.power_command == "mdes":
        if args.effect is not None:
            raise UsageError("--effect does not apply to 'power mdes'; give --power instead.")
        res = analytic_mdes(design, power=target, **common)
    elif args.power_command == "power":
        if args.power is not None:
            raise UsageError("--power does not apply to 'power power'; give --effect instead.")
        if design.outcome != "binary" and args.effect is None:
            raise UsageError("'power power' needs --effect (or --outcome binary --proportions).")
        res = analytic_power(design, effect=args.effect, **common)
    else:
        if design.outcome != "binary" and args.effect is None:
            raise UsageError("'power clusters' needs --effect (or --outcome binary --proportions).")
        res = required_clusters(design, effect=args.effect, power=target, **common)
    out = res.to_json_summary()
    out["design"] = design.to_dict()
    emit(out, res.summary(), args.format)
    return 0


def _run_simulate(args: argparse.Namespace) -> int:
    from trialkit._io import atomic_write_text, provenance, write_frame, write_json
    from trialkit.power.backends import make_backend
    from trialkit.power.simulation import (
        Scenario,
        load_scenarios,
        scenarios_from_config,
        simulate_power_grid,
    )

    sim_keys = {
        "effect": args.effect,
        "reps": args.reps,
        "seed": args.seed,
        "method": args.method,
        "df_method": args.df_method,
        "alpha": args.alpha,
    }
    overrides = {k: v for k, v in sim_keys.items() if v is not None}
    if args.one_tailed:
        overrides["two_tailed"] = False
    design_kw = _design_settings(args)
    if args.config:
        scenarios = load_scenarios(args.config)
        if overrides or design_kw:
            scenarios = [
                Scenario.from_dict(
                    {**s.to_dict(), **overrides, "design": {**s.design.to_dict(), **design_kw}}
                )
                for s in scenarios
            ]
    else:
        _check_levels(design_kw)
        if args.effect is None and design_kw.get("outcome") != "binary":
            raise UsageError("'power simulate' needs --effect (or --config FILE).")
        scenarios = scenarios_from_config({"defaults": {**design_kw, **overrides}}, "command line")
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        refuse_existing(
            out_dir,
            directory=True,
            error=PowerError,
            code="power.out_exists",
            message="`--out` must be a new or empty directory; it already has files.",
            hint="Choose another directory; trialkit never overwrites earlier results.",
        )
    for s in scenarios:
        s.validate()
    if args.scheduler and args.backend != "dask":
        raise UsageError("--scheduler needs --backend dask.")
    backend = make_backend(args.backend, scheduler=args.scheduler, workers=args.workers)
    try:
        grid = simulate_power_grid(scenarios, backend=backend, chunk_size=args.chunk_size)
    finally:
        backend.close()
    failed = sum(r.failed for r in grid.results)
    if out_dir is not None:
        from trialkit.power.plots import plot_simulation_grid

        prov = provenance(
            inputs={"config": args.config} if args.config else None,
            seed=scenarios[0].seed,
            extra={"backend": args.backend},
        )
        write_json(out_dir / "results.json", {"provenance": prov, **grid.to_dict()})
        write_frame(out_dir / "results.csv", grid.to_frame())
        atomic_write_text(out_dir / "summary.txt", grid.summary() + "\n")
        plot_simulation_grid(grid, out_dir)
    if len(grid.results) == 1:
        payload: dict[str, Any] = grid.results[0].to_json_summary()
    else:
        payload = {"scenarios": [r.to_json_summary() for r in grid.results]}
    emit(payload, grid.summary(), args.format)
    if failed:
        sys.stderr.write(
            f"trialkit: WARNING: {failed} fits failed across the scenarios; they "
            "are kept and counted as not rejected (see the summary).\n"
        )
    return 0


def _run_progression(args: argparse.Namespace) -> int:
    from trialkit.power.progression import progression_sample_size

    if (args.icc is None) != (args.cluster_size is None):
        raise UsageError("--icc and --cluster-size go together (design effect 1 + (m − 1)ρ).")
    res = progression_sample_size(
        args.red,
        args.green,
        alpha=0.05 if args.alpha is None else args.alpha,
        power=0.9 if args.power is None else args.power,
        icc=args.icc,
        cluster_size=args.cluster_size,
        variant=args.variant,
    )
    emit(res.to_dict(), res.summary(), args.format)
    return 0
