"""Resuming safely: a finished run is reused only when it was made on the data, and with the
resolved settings, that its configuration would run on now.

A run id hashes the configuration as given; it does not cover the data the run used (a cohort
preset whose contents changed keeps its name) nor settings a kind resolves at run time (e.g. a
cohort preset's short-training defaults). So before a sweep reuses anything — a finished run it
skips, a finished run whose trained network a shared training loads, a training another sweep
has claimed — it compares the **fingerprint** of the configuration now (the kind's
:attr:`~ogae_core.experiments.kinds.ExperimentKind.data_hash` and
:attr:`~ogae_core.experiments.kinds.ExperimentKind.resolved_settings` hooks) with the one the run
stored (``config.json["provenance"]``: ``data_hash``, ``resolved_settings``; a run that stored
no settings counts as ``{}``) or the claim recorded. A mismatch raises :class:`StaleRunError`
naming the run directories, the stored and the current values and what to do; nothing is
reused, overwritten or trained. A kind without the hooks is not compared.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from ogae_core.runs import create_run
>>> root = Path(tempfile.mkdtemp())
>>> with create_run(root, "exp", {"method": "x", "seed": 0}, seed=0, data_hash="old", run_id="x-s0") as w:
...     w.write_metrics({})
>>> mismatch(Fingerprint("new", None), stored_fingerprint(root / "exp" / "x-s0"))
['data hash stored old vs current new']
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ogae_core.experiments.kinds import get_kind, kind_of

#: Stale runs listed in a :class:`StaleRunError` message (the rest are counted).
LISTED_RUNS = 5


class StaleRunError(ValueError):
    """A finished run (or another sweep's claim) was made on other data or settings than the
    sweep would use now; nothing was reused or started.

    Attributes
    ----------
    stale : dict
        ``{run directory (or claim file): [what differs, ...]}``.
    """

    def __init__(self, message: str, stale: Mapping[Path, list[str]]) -> None:
        super().__init__(message)
        self.stale = dict(stale)


@dataclass(frozen=True)
class Fingerprint:
    """What a run was (or would be) made on: the data hash and the resolved settings.

    ``None`` in a current fingerprint: the kind does not compare that part.
    """

    data_hash: str | None
    resolved_settings: dict | None = None


def current_settings(config: Any) -> dict | None:
    """The settings ``config`` resolves to now (its kind's ``resolved_settings`` hook, as JSON
    values), or ``None`` when the kind does not compare settings.

    Examples
    --------
    >>> from ogae_core.experiments.mri import MriConfig
    >>> current_settings(MriConfig("sae-loc", cohort="smoke"))["epochs"]
    2
    """
    from ogae_core.runs.provenance import to_jsonable

    kind = kind_of(config)
    return to_jsonable(dict(kind.resolved_settings(config))) if kind.resolved_settings is not None else None


def current_fingerprint(config: Any) -> Fingerprint:
    """The fingerprint of ``config`` now, from its kind's hooks (the data hash may read the data).

    Examples
    --------
    >>> from ogae_core.experiments.mri import MriConfig
    >>> current_fingerprint(MriConfig("sae-loc", cohort="smoke")).resolved_settings["epochs"]
    2
    """
    kind = kind_of(config)
    data = kind.data_hash(config) if kind.data_hash is not None else None
    return Fingerprint(None if data is None else str(data), current_settings(config))


def stored_fingerprint(run_dir: str | Path) -> Fingerprint:
    """The fingerprint a finished run stored in its ``config.json`` (no settings stored: ``{}``)."""
    from ogae_core.runs import read_run

    prov = read_run(run_dir).config.get("provenance") or {}
    return Fingerprint(prov.get("data_hash"), dict(prov.get("resolved_settings") or {}))


def mismatch(current: Fingerprint, stored: Fingerprint) -> list[str]:
    """What differs between a current and a stored fingerprint (empty: the run may be reused).

    Examples
    --------
    >>> mismatch(Fingerprint("a", {"epochs": 4}), Fingerprint("a", {}))
    ["resolved settings stored {} vs current {'epochs': 4}"]
    >>> mismatch(Fingerprint(None, None), Fingerprint("anything", {"epochs": 1}))
    []
    """
    out = []
    if current.data_hash is not None and stored.data_hash != current.data_hash:
        out.append(f"data hash stored {stored.data_hash or '(none recorded)'} vs current {current.data_hash}")
    if current.resolved_settings is not None and stored.resolved_settings != current.resolved_settings:
        out.append(f"resolved settings stored {stored.resolved_settings} vs current {current.resolved_settings}")
    return out


def group_fingerprint(config: Any) -> str:
    """A short hash of ``config``'s current fingerprint, recorded in training claims (``""`` when
    its kind compares nothing)."""
    from ogae_core.runs import config_hash

    fp = current_fingerprint(config)
    if fp.data_hash is None and fp.resolved_settings is None:
        return ""
    return config_hash({"data_hash": fp.data_hash, "resolved_settings": fp.resolved_settings})


def settings_mismatch(run_config: Mapping[str, Any]) -> list[str]:
    """What differs between the resolved settings a finished run stored (``run_config``: its
    ``config.json``) and the ones its configuration resolves to now; empty when they agree, when
    the run's kind has no ``resolved_settings`` hook, or when its config cannot be read. Reports
    use it to leave out runs whose unchanged run id now means another training (no data hash is
    computed: it may need the data).

    Examples
    --------
    >>> from ogae_core.experiments import RunConfig
    >>> d = RunConfig("ogae", "ocsvm").to_dict()
    >>> settings_mismatch({**d, "provenance": {"resolved_settings": {}}})[0][:34]
    'resolved settings stored {} vs cur'
    >>> settings_mismatch({**RunConfig("ae", "recons").to_dict(), "provenance": {}})
    []
    """
    try:
        config = get_kind(run_config.get("experiment_kind", "")).config_type.from_dict(run_config)
    except (ValueError, TypeError, KeyError):
        return []
    stored = dict((run_config.get("provenance") or {}).get("resolved_settings") or {})
    return mismatch(Fingerprint(None, current_settings(config)), Fingerprint(None, stored))


def current_runs(runs: Sequence[Any]) -> tuple[list, dict[str, list[str]]]:
    """Split finished runs (:class:`~ogae_core.runs.Run`) into those trained under the settings
    their configuration resolves to now and ``{run id: differences}`` of the others
    (:func:`settings_mismatch`). Reports and figures show the first and name the second.

    Examples
    --------
    >>> current_runs([])
    ([], {})
    """
    left_out = {r.run_id: d for r in runs if (d := settings_mismatch(r.config))}
    return [r for r in runs if r.run_id not in left_out], left_out


def stale_error(stale: Mapping[Path, list[str]], what: str) -> StaleRunError:
    """The :class:`StaleRunError` for ``{path: differences}``; ``what`` says what was stopped."""
    lines = [f"  {path}: {'; '.join(diffs)}" for path, diffs in list(stale.items())[:LISTED_RUNS]]
    if len(stale) > LISTED_RUNS:
        lines.append(f"  ... and {len(stale) - LISTED_RUNS} more")
    message = (f"{len(stale)} finished run(s) or claim(s) were made on other data or settings than this sweep "
               f"would use now; {what} (resuming would silently mix them with new runs):\n" + "\n".join(lines) +
               "\nUse a new experiment name (--experiment) or runs root (--runs-root), or delete the stale run "
               "directories listed above, then run the command again.")
    return StaleRunError(message, stale)


def stale_runs(configs: Sequence[Any], experiment_dir: str | Path) -> dict[Path, list[str]]:
    """``{run directory: differences}`` of the finished runs of ``configs`` in ``experiment_dir``
    whose stored fingerprint differs from the configuration's current one."""
    from ogae_core.runs import is_finished

    exp_dir = Path(experiment_dir)
    out: dict[Path, list[str]] = {}
    cache: dict[int, Fingerprint] = {}
    for c in configs:
        path = exp_dir / c.run_id()
        if path in out or not is_finished(path):
            continue
        kind = kind_of(c)
        if kind.data_hash is None and kind.resolved_settings is None:
            continue
        if id(c) not in cache:
            cache[id(c)] = current_fingerprint(c)
        diffs = mismatch(cache[id(c)], stored_fingerprint(path))
        if diffs:
            out[path] = diffs
    return out


def check_finished_runs(configs: Sequence[Any], experiment_dir: str | Path,
                        what: str = "nothing was started") -> None:
    """Raise :class:`StaleRunError` when a finished run of ``configs`` is stale (see the module
    docstring); return quietly otherwise."""
    stale = stale_runs(configs, experiment_dir)
    if stale:
        raise stale_error(stale, what)


def check_claims(groups: Sequence[Sequence[Any]], experiment_dir: str | Path) -> None:
    """Raise :class:`StaleRunError` when another sweep holds the claim of one of ``groups``'
    trainings with another fingerprint (it trains on other data or settings)."""
    from ogae_core.runs import claim_path, holder

    stale: dict[Path, list[str]] = {}
    for group in groups:
        key = group[0].training_key()
        claim = holder(experiment_dir, key)
        if claim is None or not claim.fingerprint:
            continue
        mine = group_fingerprint(group[0])
        if mine and mine != claim.fingerprint:
            stale[claim_path(experiment_dir, key)] = [
                f"training claimed by {claim.describe()} with fingerprint {claim.fingerprint}, this sweep's is {mine}"]
    if stale:
        raise stale_error(stale, "nothing was started")
