"""A toy experiment kind, registered in a few dozen lines (importable, so that submitit's local
worker processes can unpickle its configs and its group function).

Each run "scores" 40 synthetic items: normal items ~ N(0, 1), anomalies ~ N(shift, 1).
Configurations with the same seed share a "training". Setting ``OGAE_TOY_DIE_AFTER=k`` in the
environment kills the worker process after ``k`` runs of a group (an interrupted sweep).

For the interruption tests: ``OGAE_TOY_TRAIN_S`` / ``OGAE_TOY_RUN_S`` make a group's "training"
(done when none of its runs is finished yet) and each run take that many seconds, and
``OGAE_TOY_COUNTER=<file>`` appends ``train <training key> <pid>`` after each training and
``run <run id> <pid>`` after each run written. A config with ``shift`` > 1000 is refused by
the kind's ``validate`` hook (before any job); one with ``shift`` < 0 fails in its job.
``OGAE_TOY_DATA`` names the "data" (default ``toy-data-1``): the kind's ``data_hash`` hook, stored
in every run's provenance (a changed value makes finished runs stale).
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd

from ogae_core.evaluation import auroc
from ogae_core.experiments import ExperimentKind, RunFailed, RunFinished, register_kind
from ogae_core.runs import config_hash, create_run, is_finished, list_runs, run_id


@dataclass(frozen=True)
class ToyConfig:
    kind: ClassVar[str] = "toy"
    shift: float = 1.0
    seed: int = 0

    @property
    def label(self) -> str:
        return f"toy-shift{self.shift}"

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "label": self.label, "experiment_kind": self.kind}

    def run_id(self) -> str:
        return run_id(self.to_dict(), self.label)

    def training_key(self) -> str:
        return config_hash({"seed": self.seed, "experiment_kind": self.kind})


def data_hash(config) -> str:
    return os.environ.get("OGAE_TOY_DATA", "toy-data-1")


def _count(line: str) -> None:
    counter = os.environ.get("OGAE_TOY_COUNTER")
    if counter:
        with open(counter, "a", encoding="utf-8") as fh:
            fh.write(f"{line} {os.getpid()}\n")


def run_training_group(configs, runs_root=None, experiment="toy", *, device="cpu", threads=None, progress=False, log=True):
    out, written = {}, 0
    die_after = int(os.environ.get("OGAE_TOY_DIE_AFTER", "0"))
    if configs and not any(is_finished(Path(runs_root) / experiment / c.run_id()) for c in configs):
        time.sleep(float(os.environ.get("OGAE_TOY_TRAIN_S", "0")))
        _count(f"train {configs[0].training_key()}")
    for cfg in configs:
        path = Path(runs_root) / experiment / cfg.run_id()
        if is_finished(path):
            out[cfg.run_id()] = RunFinished(cfg.run_id(), path)
            continue
        if die_after and written >= die_after:
            os._exit(3)  # a killed worker: no outcome for the rest of the group
        try:
            if cfg.shift < 0:
                raise ValueError(f"shift must be >= 0; got {cfg.shift}")
            time.sleep(float(os.environ.get("OGAE_TOY_RUN_S", "0")))
            rng = np.random.default_rng(cfg.seed)
            label = np.r_[np.zeros(30, int), np.ones(10, int)]
            score = rng.normal(size=40) + cfg.shift * label
            with create_run(runs_root, experiment, cfg.to_dict(), seed=cfg.seed, run_id=cfg.run_id(),
                            data_hash=data_hash(cfg)) as w:
                w.write_scores(pd.DataFrame({"score": score, "label": label}))
                w.write_metrics({"test": {"auroc": auroc(label, score)}})
            out[cfg.run_id()] = RunFinished(cfg.run_id(), w.final_path)
            _count(f"run {cfg.run_id()}")
            written += 1
        except Exception as err:  # noqa: BLE001
            out[cfg.run_id()] = RunFailed.from_exception(cfg.run_id(), err)
    return out


@dataclass
class ToyReport:
    table: pd.DataFrame

    def render(self, fmt: str = "md") -> str:
        return "toy report\n" + self.table.to_string(index=False)


def report(runs_root, experiment, **options):
    runs = list_runs(runs_root, experiment)
    return ToyReport(pd.DataFrame([{"label": r.label, "seed": r.seed, "auroc": r.metrics["test"]["auroc"]} for r in runs]))


def add_arguments(parser):
    parser.add_argument("--shifts", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])


def configs_from_args(args):
    return [ToyConfig(shift=s, seed=seed) for seed in args.seeds for s in args.shifts], "toy"


def validate(config):
    if config.shift > 1000:
        raise ValueError(f"shift must be at most 1000; got {config.shift}")


KIND = register_kind(ExperimentKind("toy", ToyConfig, run_training_group, "a toy kind (tests)", report=report,
                                    add_arguments=add_arguments, configs_from_args=configs_from_args,
                                    validate=validate, data_hash=data_hash), replace=True)
