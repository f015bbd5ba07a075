"""Train the patch models on a cohort and write their score maps, from one command.

``python -m ogae_core.volumes.run --cohort default --methods ogae-loc sae-loc sae-ps --out DIR``

For each method: fit on the cohort's training split (80 % training, 20 % early stopping,
seeded), save the detector (``DIR/<method>/detector``), write one NIfTI anomaly map per test
control and patient plus ``subject_scores.json`` (``DIR/<method>/maps``,
:func:`ogae_core.volumes.score_maps.score_cohort`), and ``DIR/<method>/summary.json``: fit and
scoring seconds, voxel AUROC / AUPR per patient (over the brain) with the lesion prevalence
(the chance AUPR), and the subject-level AUROC of patients vs test controls. This is a quick
look; the MRI experiment kind (``ogae bench mri``) does the paper's evaluation.

Parameters of a method are set with ``--param METHOD.NAME=VALUE`` (JSON values), e.g.
``--param sae-loc.nu=0.05 --param ogae-loc.method_params={"lam":0.1}``; ``--epochs`` sets every
method's epochs.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "parse_params", "run_methods"]


def parse_params(items: list, methods: list) -> dict:
    """``{"m.k=v", ...}`` -> ``{m: {k: json(v)}}`` (values that are not JSON stay strings).

    Examples
    --------
    >>> parse_params(["sae-loc.nu=0.05", "sae-ps.gamma=scale"], ["sae-loc", "sae-ps"])
    {'sae-loc': {'nu': 0.05}, 'sae-ps': {'gamma': 'scale'}}
    """
    out: dict = {m: {} for m in methods}
    for item in items or []:
        key, sep, value = item.partition("=")
        method, dot, name = key.rpartition(".")
        if not sep or not dot or method not in out:
            raise ValueError(f"--param {item!r}: expected METHOD.NAME=VALUE with METHOD one of {methods}")
        try:
            out[method][name] = json.loads(value)
        except json.JSONDecodeError:
            out[method][name] = value
    return out


def _voxel_metrics(amap: np.ndarray, vol) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    inside = vol.brain & np.isfinite(amap)
    y, s = vol.lesion[inside], amap[inside]
    return {"auroc": float(roc_auc_score(y, s)), "aupr": float(average_precision_score(y, s)),
            "prevalence": float(y.mean())}


def run_methods(cohort_name: str, methods: list, out: str | Path, *, params: dict | None = None, seed: int = 0,
                overwrite: bool = False, progress: bool = True) -> dict:
    """Fit, save and score every method on ``cohort_name``; returns the summaries by method."""
    from sklearn.metrics import roc_auc_score

    from ogae_core.data.mri import load_cohort
    from ogae_core.volumes import build_volume_detector
    from ogae_core.volumes.score_maps import score_cohort

    out = Path(out)
    cohort = load_cohort(cohort_name)
    train, early_stop = cohort.split_training(seed=seed)
    tests = cohort.by_role("test_control") + cohort.by_role("patient")
    summaries = {}
    for name in methods:
        det = build_volume_detector(name, (params or {}).get(name, {}))
        t0 = time.perf_counter()
        det.fit(train, early_stop, seed=seed, progress=progress)
        fit_s = time.perf_counter() - t0
        det.save(out / name / "detector", overwrite=overwrite)
        t0 = time.perf_counter()
        scores = score_cohort(det, tests, out / name / "maps", overwrite=overwrite, progress=progress)
        score_s = time.perf_counter() - t0
        patients = {}
        import nibabel as nib

        for s in cohort.by_role("patient"):
            vol = s.load()
            full = np.asarray(nib.load(str(out / name / "maps" / scores[s.subject_id]["file"])).dataobj, np.float32)
            amap = full[:, :, vol.z_start:vol.z_start + vol.t1.shape[2]] if full.shape != vol.t1.shape else full
            patients[s.subject_id] = _voxel_metrics(amap, vol)
        y = [scores[s.subject_id]["role"] == "patient" for s in tests]
        subj = [scores[s.subject_id]["subject_score"] for s in tests]
        summary = {
            "method": name, "params": det.get_params(), "seed": seed, "cohort": cohort_name,
            "n_train": len(train), "n_early_stop": len(early_stop), "n_test": len(tests),
            "fit_seconds": fit_s, "score_seconds": score_s, "score_seconds_per_subject": score_s / max(len(tests), 1),
            "voxel_auroc_mean": float(np.mean([p["auroc"] for p in patients.values()])),
            "voxel_aupr_mean": float(np.mean([p["aupr"] for p in patients.values()])),
            "prevalence_mean": float(np.mean([p["prevalence"] for p in patients.values()])),
            "subject_auroc": float(roc_auc_score(y, subj)) if 0 < sum(y) < len(y) else float("nan"),
            "patients": patients,
        }
        (out / name / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        summaries[name] = summary
        print(f"{name}: fit {fit_s:.0f} s, scoring {score_s:.0f} s ({summary['score_seconds_per_subject']:.1f} s per "
              f"subject); voxel AUROC {summary['voxel_auroc_mean']:.3f}, AUPR {summary['voxel_aupr_mean']:.4f} "
              f"(prevalence {summary['prevalence_mean']:.4f}); subject AUROC {summary['subject_auroc']:.3f}",
              flush=True)
    return summaries


def main(argv: list | None = None) -> int:
    """Command-line entry (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m ogae_core.volumes.run", description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", default="default", help="cohort preset (smoke, demo, default, full, paper)")
    parser.add_argument("--methods", nargs="+", default=["ogae-loc", "sae-loc", "sae-ps"])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every method")
    parser.add_argument("--param", action="append", default=[], metavar="METHOD.NAME=VALUE")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    params = parse_params(args.param, args.methods)
    if args.epochs is not None:
        for p in params.values():
            p.setdefault("epochs", args.epochs)
    run_methods(args.cohort, args.methods, args.out, params=params, seed=args.seed, overwrite=args.overwrite,
                progress=not args.quiet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
