"""A realistic synthetic run store for the dashboard tests, written through ogae_core.runs.

Mirrors what the benchmark writes for MNIST-C 3 vs 8 (test and validation splits, three test
corruptions, per-epoch histories with guidance phases, a stored UMAP embedding, weights). Once
the smoke preset exists, its store can replace this one (same layout).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ogae_core import runs as store

CORRUPTIONS = ("stripe", "canny_edges", "brightness")
MODELS = (  # method, scoring, separation of anomalies in score units
    ("ogae", "ocsvm", 1.2),
    ("ae", "recons", 0.9),
    ("ae", "ocsvm", 0.6),
    ("h-dsvdd", None, 0.3),
)


def _items(n_per_class: int, split: str) -> pd.DataFrame:
    rows = []
    for c in CORRUPTIONS:
        for digit, label in ((3, 0), (8, 1)):
            for i in range(n_per_class):
                rows.append({"split": split, "corruption": c, "digit": digit, "label": label, "source_index": i})
    df = pd.DataFrame(rows)
    df["item"] = np.arange(len(df))
    return df


def _history(method: str, rng: np.random.Generator, epochs: int = 6) -> pd.DataFrame:
    """History rows shaped like ogae_core.train's (NaN where a quantity does not apply)."""
    e = np.arange(1, epochs + 1)
    nan = np.full(epochs, np.nan)
    h = pd.DataFrame(
        {
            "epoch": e,
            "phase": "train",
            "loss_reconstruction": 0.08 * np.exp(-e / 3) + 0.02 + rng.normal(0, 1e-3, epochs),
        }
    )
    for col in (
        "loss_kl",
        "loss_similarity",
        "loss_svdd",
        "loss_guidance",
        "loss_expander",
        "loss_compactor",
        "misclassified_fraction",
        "n_support",
        "sv_fraction",
        "rho",
        "solver_iterations",
        "expander_weight",
        "compactor_weight",
    ):
        h[col] = nan
    if method == "ogae":
        compactor = (e > 2).astype(float)
        h["phase"] = np.where(compactor > 0, "both", "expander")
        h["loss_expander"] = 0.5 * np.exp(-e / 2)
        h["loss_compactor"] = compactor * 0.3 * np.exp(-e / 4)
        h["loss_guidance"] = h["loss_expander"] + h["loss_compactor"]
        h["expander_weight"], h["compactor_weight"] = 1.0, compactor
        h["misclassified_fraction"] = 0.4 * np.exp(-e / 3)
        h["sv_fraction"] = 0.5 + rng.normal(0, 0.02, epochs)
        h["n_support"] = h["sv_fraction"] * 50
        h["rho"] = 0.2 + 0.05 * np.log(e)
        h["solver_iterations"] = rng.integers(20, 60, epochs)
    if method == "h-dsvdd":
        h["phase"] = np.where(e <= 2, "pretrain", "train")
        h["loss_svdd"] = np.where(e <= 2, np.nan, 0.2 * np.exp(-e / 2))
    h["train_loss"] = h.filter(like="loss_").sum(axis=1)
    h["latent_spread"] = 1.0 + 0.3 * e if method == "ogae" else 1.0 + 0.05 * e
    h["val_loss"] = h["loss_reconstruction"] * 1.05
    h["seconds"] = 2.0 + rng.random(epochs)
    return h


def write_synthetic_store(
    root: Path, experiment: str = "mnistc-3v8-smoke", n_per_class: int = 40, seed: int = 0
) -> list[Path]:
    """Write one finished run per model of MODELS (plus a second seed of OgAE) under ``root``."""
    rng = np.random.default_rng(seed)
    test, val = _items(n_per_class, "test"), _items(max(10, n_per_class // 4), "validation")
    paths = []
    for k, (method, scoring, sep) in enumerate(MODELS + (("ogae", "ocsvm", 1.1),)):
        run_seed = 1 if k == len(MODELS) else 0
        config = {
            "method": method,
            "scoring": scoring,
            "seed": run_seed,
            "epochs": 6,
            "batch_size": 100,
            "task": {"normal": 3, "anomaly": 8, "test_corruptions": list(CORRUPTIONS)},
            "hyperparameters": {"nu": 0.5, "gamma": "scale"} if scoring == "ocsvm" else {},
        }
        if scoring is None:
            config["label"] = method
        frames = []
        for items in (test, val):
            shift = items["corruption"].map({"stripe": 0.0, "canny_edges": 0.4, "brightness": -0.2}).to_numpy()
            score = sep * items["label"].to_numpy() + shift * (k % 2) + rng.normal(0, 1, len(items))
            frames.append(items.assign(score=score))
        scores = pd.concat(frames, ignore_index=True)
        latents = test.assign(
            umap_x=rng.normal(0, 1, len(test)) + 3 * test["corruption"].map({c: i for i, c in enumerate(CORRUPTIONS)}),
            umap_y=rng.normal(0, 1, len(test)) + sep * test["label"],
        )
        val_auroc = float(np.mean(rng.random(5)))
        with store.create_run(root, experiment, config, seed=run_seed, data_hash="synthetic-0001") as w:
            w.write_scores(scores)
            w.write_history(_history(method, rng))
            w.write_latents(latents)
            w.write_model({"encoder.weight": rng.normal(size=(4, 1, 5, 5)).astype(np.float32)})
            w.write_metrics({"validation": {"auroc": val_auroc}, "train_seconds": 12.5, "flags": {"collapsed": False}})
        paths.append(w.final_path)
    return paths


def write_large_store(root: Path, n_runs: int = 1000, experiment: str = "mnistc-3v8-paper",
                      n_per_class: int = 40, seed: int = 0) -> Path:
    """A paper-sized experiment: ``n_runs`` finished runs with distinct configurations.

    Writes the runs of :func:`write_synthetic_store` once through :mod:`ogae_core.runs`, then
    copies their files into ``n_runs`` run directories (cycling over the models), each with its
    own hyperparameter ``lam``, seed, run id and validation AUROC in ``config.json`` /
    ``metrics.json`` — as a ``paper`` sweep's grid x seeds would. Copying keeps writing 1,000
    runs to seconds. Returns the experiment directory.
    """
    import json
    import shutil

    templates = [store.read_run(p) for p in write_synthetic_store(root / ".templates", experiment, n_per_class, seed)]
    rng = np.random.default_rng(seed)
    exp_dir = root / experiment
    exp_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n_runs):
        template = templates[i % len(templates)]
        config = json.loads((template.path / store.CONFIG_FILE).read_text())
        config["seed"] = i % 3
        config.setdefault("hyperparameters", {})["lam"] = float(i // 3)
        rid = store.run_id({k: v for k, v in config.items() if k not in ("provenance",)}, None)
        target = exp_dir / rid
        shutil.copytree(template.path, target)
        (target / store.CONFIG_FILE).write_text(json.dumps(config))
        metrics = dict(template.metrics, validation={"auroc": float(rng.random())})
        (target / store.METRICS_FILE).write_text(json.dumps(metrics))
    shutil.rmtree(root / ".templates")
    return exp_dir
