"""Generate the project's notebooks (JSON) from the cell sources below, so they stay reviewable.

Run ``python notebooks/build_notebooks.py`` after editing a cell here; commit both this file and
the regenerated ``.ipynb`` files. Notebooks hold a ``parameters`` cell of literals (papermill),
then calls into :mod:`ogae_core.experiments` / :mod:`ogae_core.evaluation` / :mod:`ogae_core.viz`,
then plots (plotly). Outputs are not stored; ``make report`` executes them into ``reports/``.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNEL = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}

SETUP = """\
import pandas as pd
import plotly.io as pio
from IPython.display import HTML, Markdown, display

# plotly.js embedded once per notebook: the HTML report works offline, JupyterLab renders natively
pio.renderers.default = "plotly_mimetype+notebook"
"""

NB01 = [
    new_markdown_cell("""\
# Experiment 1 — MNIST-C benchmark (Table I / IV)

Normal digit vs anomaly digit under MNIST-C corruptions (Pinon & Lartizien, supplementary S-D):
training on the normal digit under the *training* corruptions, hyperparameters chosen on the
validation split (MNIST test images), results on the test split (MNIST training images) under
*unseen* corruptions. Runs live in the run store and are skipped when they already exist, so this
notebook resumes an interrupted sweep and re-renders instantly once the runs are there.

Set `preset` to `quick` (the demo, minutes), `paper` (all twelve rows with grids and seeds; hours
on a CPU — better launched with `ogae bench mnistc --preset paper --jobs N` or on SLURM) or let
`smoke=True` run the tiny smoke preset."""),
    new_code_cell("""\
normal = 3
anomaly = 8
preset = "quick"
methods = None
seeds = None
corruptions = None
runs_root = "runs"
experiment = ""
executor = "inline"
jobs = 1
n_boot = 1000
smoke = False""", metadata={"tags": ["parameters"]}),
    new_code_cell(SETUP + """
from ogae_core.experiments import benchmark_report, experiment_name, preset_configs, run_sweep
from ogae_core.viz import latent_scatter, per_corruption_bars, pr_figure, roc_figure, training_dynamics

if smoke:
    preset, n_boot = "smoke", 200
experiment = experiment or experiment_name(preset, normal, anomaly)
configs = preset_configs(preset, normal, anomaly, methods=methods, seeds=seeds, test_corruptions=corruptions)
print(f"{len(configs)} configuration(s) of preset {preset!r} -> {runs_root}/{experiment}")"""),
    new_markdown_cell("## Run (or load) the sweep\nFinished runs are skipped; the same call resumes an interrupted sweep."),
    new_code_cell("""\
result = run_sweep(configs, runs_root, experiment, executor=executor, jobs=jobs)
assert result.ok, result.failed"""),
    new_markdown_cell("""\
## Results table with significance
Selection on the validation split; paired bootstrap on the test split (best in **bold**, models not
significantly worse than the best <ins>underlined</ins>, Bonferroni, α = 0.01)."""),
    new_code_cell("""\
report = benchmark_report(runs_root, experiment, n_boot=n_boot)
display(Markdown(report._caption()))
display(HTML(report.table.to_html()))
display(report.selection[["label", "validation_mean", "n_candidates", "n_seeds", "run_ids"]])"""),
    new_markdown_cell("## ROC and PR curves (test split)"),
    new_code_cell("""\
roc_figure(report.aligned.scores, report.aligned.labels).show()
pr_figure(report.aligned.scores, report.aligned.labels).show()"""),
    new_markdown_cell("## Per test corruption"),
    new_code_cell("""\
if report.per_corruption is not None:
    display(HTML(report.corruption_table.to_html()))
    per_corruption_bars(report.per_corruption, "auroc").show()"""),
    new_markdown_cell("""\
## Latent space (UMAP, computed when the run was made)
Train items (normal digit under the training corruptions) and test items (both digits under the
test corruptions). The paper observed that corruptions separate in an autoencoder's latent space."""),
    new_code_cell("""\
for label in [lab for lab in ("ae-recons", "ogae-ocsvm") if lab in report.runs] or list(report.runs)[:1]:
    latents = report.runs[label].latents()
    latent_scatter(latents, color="corruption", title=f"{label}: latent codes by corruption").show()
    latent_scatter(latents, color="label", title=f"{label}: latent codes by class (1 = anomaly)").show()"""),
    new_markdown_cell("## Latent spread over epochs (mean pairwise MSE of the codes)"),
    new_code_cell("""\
histories = {label: run.history() for label, run in report.runs.items()}
training_dynamics(histories, panels=("loss", "latent_spread"), log_losses=True).show()"""),
]

NB02 = [
    new_markdown_cell("""\
# Guidance dynamics of OgAE (Fig. 6 and the strategy comparison)

The OCSVM guidance has two gradient terms: the **expander** (moves the support vectors) and the
**compactor** (pulls misclassified codes inside the boundary). Fig. 6 of the paper trains with the
expander only for `switch_epoch` epochs, then the compactor only, and follows the average pairwise
MSE of the latent codes (latent spread), the loss terms and the fraction of misclassified codes.
The strategy comparison trains the same network with expander→both (the paper's choice), both
throughout, and compactor only."""),
    new_code_cell("""\
normal = 3
anomaly = 8
epochs = 20
switch_epoch = 10
strategies = ["expander-then-compactor", "expander-then-both", "both", "compactor"]
seeds = [0]
max_train = 3000
max_validation = 3000
max_test = 6000
runs_root = "runs"
experiment = ""
executor = "inline"
jobs = 1
n_boot = 1000
smoke = False""", metadata={"tags": ["parameters"]}),
    new_code_cell(SETUP + """
from ogae_core.experiments import benchmark_report, guidance_configs, run_sweep
from ogae_core.runs import read_run
from ogae_core.viz import training_dynamics

experiment = experiment or f"mnistc-{normal}v{anomaly}-guidance" + ("-smoke" if smoke else "")
if smoke:  # Fig. 6 and one comparison strategy, 2 epochs, tiny data
    strategies, n_boot = [s for s in strategies if s in ("expander-then-compactor", "both")] or strategies[:2], 200
configs = guidance_configs(normal, anomaly, strategies=strategies, epochs=epochs, switch_epoch=switch_epoch,
                           seeds=seeds, smoke=smoke,
                           task_overrides={"max_train": max_train, "max_validation": max_validation, "max_test": max_test})
result = run_sweep(configs, runs_root, experiment, executor=executor, jobs=jobs)
assert result.ok, result.failed
runs = [read_run(p) for p in result.finished + result.skipped]
histories = {f"{r.label} (seed {r.seed})": r.history() for r in runs}"""),
    new_markdown_cell("## Fig. 6 — expander only, then compactor only"),
    new_code_cell("""\
fig6 = {k: h for k, h in histories.items() if "[expander-then-compactor]" in k}
training_dynamics(fig6, panels=("loss", "latent_spread", "misclassified_fraction", "sv_fraction"),
                  loss_terms=("loss_reconstruction", "loss_guidance", "loss_expander", "loss_compactor"),
                  log_losses=True, title="Expander then compactor").show()"""),
    new_markdown_cell("## Strategy comparison"),
    new_code_cell("""\
training_dynamics(histories, panels=("latent_spread", "misclassified_fraction", "rho"),
                  title="Guidance strategies").show()
report = benchmark_report(runs_root, experiment, n_boot=n_boot)
display(Markdown(report._caption()))
display(HTML(report.table.to_html()))"""),
    new_markdown_cell("### Last epoch of every run"),
    new_code_cell("""\
last = pd.DataFrame([{"run": k, **h.iloc[-1][["epoch", "phase", "latent_spread", "misclassified_fraction", "sv_fraction", "rho"]].to_dict()}
                     for k, h in histories.items()])
last"""),
]


def build(cells: list, path: Path) -> Path:
    """Write a notebook with the project kernel metadata; returns its path."""
    nb = new_notebook(cells=cells, metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{path.stem[:2]}-{i:02d}"  # stable ids: regenerating gives identical files
    nbformat.validate(nb)
    nbformat.write(nb, str(path))
    return path


def main() -> None:
    for name, cells in (("01_mnistc_benchmark.ipynb", NB01), ("02_guidance_dynamics.ipynb", NB02)):
        print("wrote", build(cells, HERE / name))


if __name__ == "__main__":
    main()
