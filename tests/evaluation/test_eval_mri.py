"""Brain-MRI evaluation: subject scores, localization regions and metrics, best Dice, lesion
detection, and the Tables II/III statistics on generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from ogae_core.evaluation.mri import (
    AGGREGATIONS,
    best_dice,
    evaluation_region,
    lesion_detection,
    localization_metrics,
    subject_score,
    subject_scores,
)
from ogae_core.evaluation.mri_tables import (
    aggregation_table,
    classification_table,
    localization_table,
    mean_sd,
    size_tables,
)


@pytest.fixture
def volume():
    rng = np.random.default_rng(3)
    shape = (24, 26, 4)
    brain = np.zeros(shape, bool)
    brain[2:22, 2:24] = True
    vent = np.zeros(shape, bool)
    vent[10:13, 10:14] = True
    lesion = np.zeros(shape, bool)
    lesion[5:7, 5:8, 1:3] = True
    lesion[18, 20, 2] = True
    wm = np.where(brain, 0.2, 0.0).astype(np.float32)
    wm[4:20, 4:22] = 0.9
    amap = rng.normal(size=shape).astype(np.float32)
    amap[lesion] += 2.0
    amap[vent] += 10.0  # enlarged ventricles score high, as in the paper
    amap[~brain] = np.nan
    return amap, brain, vent, lesion, wm


def test_subject_score_is_minus_the_second_percentile_of_decision_values(volume):
    amap, brain, vent, _, _ = volume
    decision = -amap  # higher = more normal
    inside = brain & ~vent
    assert subject_score(amap, brain, vent, "q98") == pytest.approx(-np.percentile(decision[inside], 2), rel=1e-6)
    # the ventricles dominate the score when they are not excluded
    assert subject_score(amap, brain, vent, "q98-with-ventricles") > subject_score(amap, brain, vent, "q98") + 1
    all_scores = subject_scores(amap, brain, vent)
    assert set(all_scores) == set(AGGREGATIONS)
    assert all_scores["median"] == pytest.approx(np.median(amap[inside]))
    with pytest.raises(ValueError, match="unknown aggregation"):
        subject_score(amap, brain, vent, "max")
    with pytest.raises(ValueError, match="no finite value"):
        subject_score(np.full_like(amap, np.nan), brain, vent)


def test_localization_matches_sklearn_over_brain_minus_ventricles(volume):
    amap, brain, vent, lesion, wm = volume
    region = evaluation_region(brain, vent)
    assert not region[vent].any() and region.sum() == (brain & ~vent).sum()
    m = localization_metrics(amap, lesion, region)
    y, s = lesion[region].astype(int), amap[region]
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s))
    assert m["aupr"] == pytest.approx(average_precision_score(y, s))
    assert m["auroc30"] == pytest.approx(roc_auc_score(y, s, max_fpr=0.3))
    assert m["prevalence"] == pytest.approx(y.mean()) and m["n_lesion"] == lesion.sum()
    # ventricles included: their high scores are false positives and AUPR drops
    with_vent = localization_metrics(amap, lesion, evaluation_region(brain, vent, exclude_ventricles=False))
    assert with_vent["aupr"] < m["aupr"]
    wm_region = evaluation_region(brain, vent, wm, region="wm")
    assert wm_region.sum() < region.sum() and (wm[wm_region] >= 0.5).all()
    wm_m = localization_metrics(amap, lesion, wm_region)
    assert wm_m["prevalence"] > m["prevalence"]  # lesions lie in white matter: higher chance level
    with pytest.raises(ValueError, match="needs the white-matter"):
        evaluation_region(brain, vent, None, region="wm")
    empty = localization_metrics(amap, np.zeros_like(lesion), region)
    assert np.isnan(empty["aupr"]) and empty["n_lesion"] == 0


def test_best_dice_equals_a_brute_force_search():
    rng = np.random.default_rng(0)
    y = rng.random(300) < 0.1
    s = np.round(rng.normal(size=300) + 1.5 * y, 1)  # ties
    dice, thr = best_dice(y, s)
    brute = max(2 * (y & (s >= t)).sum() / ((s >= t).sum() + y.sum()) for t in np.unique(s))
    assert dice == pytest.approx(brute)
    assert 2 * (y & (s >= thr)).sum() / ((s >= thr).sum() + y.sum()) == pytest.approx(dice)
    with pytest.raises(ValueError):
        best_dice(np.zeros(3), np.ones(3))


def test_lesion_detection_counts_connected_lesions_by_size(volume):
    amap, brain, vent, lesion, _ = volume
    region = evaluation_region(brain, vent)
    det = lesion_detection(amap, lesion, region)
    assert len(det) == 2 and sorted(det["size_mm3"]) == [1.0, 12.0]
    hot = np.zeros_like(amap)
    hot[5:7, 5:8, 1:3] = 1.0  # only the large lesion is hot
    hot[~brain] = np.nan
    d = lesion_detection(hot, lesion, region).sort_values("size_mm3")
    assert d["detected"].tolist() == [False, True] and d["size_bin"].tolist() == ["0-10 mm3", "10-100 mm3"]
    with pytest.raises(ValueError, match="quantile"):
        lesion_detection(amap, lesion, region, quantile=2)


def _subjects(rng, methods, seeds=(0, 1, 2), n=20):
    y = np.r_[np.zeros(n // 2), np.ones(n // 2)].astype(int)
    rows = []
    for m, gap in methods.items():
        for s in seeds:
            noise = rng.normal(size=n)
            for i in range(n):
                score = gap * y[i] + noise[i]
                rows.append({"method": m, "seed": s, "subject_id": f"s{i}", "label": y[i], "score": score,
                             **{f"score_{a}": score + 0.01 * k for k, a in enumerate(AGGREGATIONS)}})
    return pd.DataFrame(rows)


def test_classification_table_bold_best_underlined_ties_and_chance():
    rng = np.random.default_rng(1)
    t = classification_table(_subjects(rng, {"strong": 4.0, "also": 3.5, "none": 0.0}), n_boot=300)
    cells = t.table.cells
    assert [c for _, c in t.table.columns] == ["AUROC", "AUROC30", "AUPR (0.5)"]
    assert cells[("strong", (None, "AUROC"))].bold or cells[("also", (None, "AUROC"))].bold
    assert not cells[("none", (None, "AUROC"))].underline and not cells[("none", (None, "AUROC"))].bold
    assert "±" in cells[("none", (None, "AUROC"))].text  # 3 seeds: mean ± sd
    assert cells[("chance", (None, "AUROC"))].text == "0.50"
    v = t.values.set_index(["method", "metric"])
    assert v.loc[("strong", "auroc"), "n_seeds"] == 3 and v.loc[("none", "auroc"), "mean"] < 0.8
    md = t.to_markdown()
    assert "**" in md and "<ins>" in md


def test_localization_table_dunn_and_paired_tests():
    rng = np.random.default_rng(2)
    rows = []
    for m, level in (("good", 0.8), ("close", 0.78), ("poor", 0.5)):
        for s in (0, 1):
            for i in range(15):
                rows.append({"method": m, "seed": s, "subject_id": f"p{i}", "auroc": level + rng.normal(0, 0.03),
                             "auroc30": level, "aupr": level / 20 + rng.normal(0, 0.002), "prevalence": 0.01,
                             "lesion_cm3": float(i + 1), "best_dice": level / 4})
    vox = pd.DataFrame(rows)
    t = localization_table(vox)
    st = t.stats.set_index(["metric", "method"])
    assert st.loc[("auroc", "good"), "is_best"]
    assert st.loc[("auroc", "poor"), "significant"] and st.loc[("auroc", "poor"), "wilcoxon_significant"]
    assert t.table.cells[("close", (None, "AUROC"))].underline
    assert st.loc[("auroc", "poor"), "friedman_p"] < 0.01
    assert [c for _, c in t.table.columns] == ["AUROC", "AUROC30", "AUPR (0.01)"]
    assert t.table.cells[("chance", (None, "AUPR (0.01)"))].text == "0.010"
    by_load, by_size = size_tables(vox, pd.DataFrame())
    assert len(by_load.columns) == 3 and list(by_load.index) == ["good", "close", "poor"] and by_size.empty


def test_aggregation_table_and_mean_sd():
    rng = np.random.default_rng(4)
    subjects = _subjects(rng, {"a": 3.0})
    t = aggregation_table(subjects, list(AGGREGATIONS))
    assert list(t.columns) == [*AGGREGATIONS, "spread"] and t.index.tolist() == ["a"]
    assert t.loc["a", "spread"] == "0.00"  # the rules differ by a constant shift: same ranking
    flipped = subjects.assign(score_mean=-subjects["score_mean"])  # one rule ranks the other way round
    spread = float(aggregation_table(flipped, list(AGGREGATIONS), metric="aupr").loc["a", "spread"])
    assert spread > 0.3
    with pytest.raises(ValueError, match="metric"):
        aggregation_table(subjects, list(AGGREGATIONS), metric="accuracy")
    with pytest.raises(ValueError, match="score_nope"):
        aggregation_table(subjects, ["q98", "nope"])
    assert mean_sd([np.nan, 0.5]) == "0.50" and mean_sd([]) == "–"
