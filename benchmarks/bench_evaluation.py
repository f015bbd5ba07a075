"""Speed of the paired bootstrap (the dashboard's and the report's significance test).

Ours: :func:`ogae_core.evaluation.paired_bootstrap` (bootstrap counts as weights on one sort
per model, all three metrics per pass). Reference: the direct way — for every resample and
model, index the resampled test set and call scikit-learn's ``roc_auc_score``,
``average_precision_score`` and ``roc_auc_score(max_fpr=0.3)``. Both are timed in the same
run on the size of the paper's 3-vs-8 test split (35,946 items) with 12 models; the reference
is timed on a few resamples and reported per resample, as ours is.

Run: ``python -m benchmarks.run_all --only bench_evaluation [--quick]``.
"""

from __future__ import annotations

import time

import numpy as np

N_ITEMS = 35_946


def _task(n_models: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(N_ITEMS) < 0.49).astype(np.int8)
    scores = {f"model{i}": y * rng.uniform(0.1, 1.5) + rng.normal(size=N_ITEMS) for i in range(n_models)}
    return y, scores


def run(quick: bool = False) -> list[dict]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    from ogae_core.evaluation import paired_bootstrap
    from ogae_core.evaluation.stats import resample_indices

    n_models = 4 if quick else 12
    n_ours, n_ref = (100, 3) if quick else (1000, 10)
    y, scores = _task(n_models)
    t0 = time.perf_counter()
    paired_bootstrap(scores, y, n=n_ours, seed=0)
    ours = (time.perf_counter() - t0) / n_ours
    t0 = time.perf_counter()
    for idx in resample_indices(N_ITEMS, n_ref, seed=0):
        for i in idx:
            yi = y[i]
            for s in scores.values():
                si = s[i]
                roc_auc_score(yi, si)
                average_precision_score(yi, si)
                roc_auc_score(yi, si, max_fpr=0.3)
    reference = (time.perf_counter() - t0) / n_ref
    case = f"{n_models} models x {N_ITEMS} items, 3 metrics ({n_ours} resamples timed; sklearn {n_ref})"
    return [
        {
            "benchmark": "evaluation",
            "case": f"paired bootstrap, s per resample: {case}",
            "ours": ours,
            "reference": reference,
            "unit": "s",
            "ratio": reference / ours if ours > 0 else None,
            "goal": f"information; 1000 resamples take {1000 * ours:.0f} s",
        }
    ]
