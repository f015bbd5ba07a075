"""Paper-layout tables: best bold, not-significantly-different underlined, three formats."""

import numpy as np
import pandas as pd
import pytest

from ogae_core.evaluation import paired_bootstrap, per_corruption_table, results_caption, results_table


@pytest.fixture(scope="module")
def boot():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(250, int), np.ones(250, int)]
    best = 2.0 * y + rng.normal(size=500)
    scores = {"OgAE_ocsvm": best, "twin": best.copy(), "weak": 0.2 * y + rng.normal(size=500)}
    return paired_bootstrap(scores, y, n=200, seed=0)


def test_cells_follow_the_bootstrap(boot):
    t = results_table(boot)
    assert t.models == ["OgAE_ocsvm", "twin", "weak"]
    for metric in ("auroc", "aupr", "auroc30"):
        best, twin, weak = (t.cells[(m, (None, metric))] for m in t.models)
        assert best.bold and not best.underline
        assert twin.underline and not twin.bold  # identical to the best: p = 1
        assert not weak.bold and not weak.underline  # significantly worse
        est = boot[(boot.metric == metric) & (boot.model == "weak")].estimate.item()
        assert weak.text == f"{est:.2f}"


def test_markdown_html_latex(boot):
    t = results_table(boot, digits=3)
    md = t.to_markdown().splitlines()
    assert md[0] == "| Method | AUROC | AUPR | AUROC30 |"
    best_auroc = boot[(boot.metric == "auroc") & boot.is_best].estimate.item()
    assert f"**{best_auroc:.3f}**" in md[2] and md[3].count("<ins>") == 3 and "**" not in md[4]
    html = t.to_html()
    assert html.count("<b>") == 3 and html.count("<u>") == 3 and "<th>AUROC30</th>" in html
    tex = t.to_latex(caption="3 vs 8")
    assert tex.count(r"\textbf{") == 3 and tex.count(r"\underline{") == 3
    assert r"OgAE\_ocsvm" in tex and r"\caption{3 vs 8}" in tex and r"\toprule" in tex


def test_show_ci_and_order(boot):
    t = results_table(boot, show_ci=True, order=["weak"])
    assert t.models[0] == "weak"
    assert "[" in t.cells[("weak", (None, "auroc"))].text
    assert list(t.frame.columns) == ["AUROC", "AUPR", "AUROC30"]


def test_per_corruption_table_groups_columns():
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 150)
    corr = np.repeat(["stripe", "canny_edges", "brightness"], 100)
    good = y * np.where(corr == "stripe", 0.2, 3.0) + rng.normal(size=300)  # bad only on stripe
    other = y * 1.0 + rng.normal(size=300)
    t = per_corruption_table({"good": good, "other": other}, y, corr, n=200, seed=0)
    assert [g for g, _ in t.columns][::3] == ["stripe", "canny_edges", "brightness"]
    assert t.cells[("other", ("stripe", "auroc"))].bold
    assert t.cells[("good", ("canny_edges", "auroc"))].bold
    html = t.to_html()
    assert '<th colspan="3">stripe</th>' in html
    assert r"\multicolumn{3}{c}{canny\_edges}" in t.to_latex()
    assert t.frame.shape == (2, 9)


def test_bad_input(boot):
    with pytest.raises(ValueError, match="lacks column"):
        results_table(pd.DataFrame({"metric": ["auroc"]}))
    with pytest.raises(ValueError, match="not in the bootstrap table"):
        results_table(boot, metrics=["f1"])
    with pytest.raises(ValueError, match="unknown model"):
        results_table(boot, order=["nope"])


def test_caption_states_the_items_and_the_bootstrap_that_made_the_table(boot):
    y = np.r_[np.zeros(250, int), np.ones(250, int)]
    text = results_caption("mnistc-3v8-quick", y, boot, selection_metric="aupr")
    assert text.startswith("mnistc-3v8-quick: test split, 500 items (250 anomalies).")
    assert f"{boot.attrs['n']} resamples" in text and f"alpha = {boot.attrs['alpha']}" in text
    assert "(metric: aupr)" in text


def test_tables_and_caption_follow_the_convention():
    from sklearn.metrics import average_precision_score

    from ogae_core.evaluation import convention_note, overall_table

    rng = np.random.default_rng(4)
    y = (rng.random(200) < 0.3).astype(int)
    s = rng.normal(size=200) + y
    t = overall_table({"a": s}, y, n=20, positive="normal")
    assert t.frame.loc["a", "AUPR"] == pytest.approx(average_precision_score(1 - y, -s))
    assert "Positive class: normal" in results_caption("x", y, t.source)
    assert "Positive class: anomaly" in results_caption("x", y, paired_bootstrap({"a": s}, y, n=20))
    with pytest.raises(ValueError, match="'foo'"):
        convention_note("foo")
