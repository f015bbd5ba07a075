"""Claim files: at most one process trains a configuration group of an experiment at a time.

Before a sweep's job trains a group of configurations (one shared training), it creates the
claim file ``<root>/<experiment>/.claims/<key>.json`` with ``O_CREAT | O_EXCL`` (atomic on
POSIX file systems, NFS included), holding the claimant's pid, host, start time, time
limit and the fingerprint of the data it trains on (see
:func:`ogae_core.experiments.resume.group_fingerprint`; empty when unknown). The job removes the file when it ends (finished, failed or interrupted).

A claim that exists is **held** unless it is **stale**:

* its host is this machine and its pid is no longer alive (a killed local job), or
* it was made by a SLURM job (``slurm_job``) that ``squeue`` no longer lists (a cancelled or
  failed job on another node; checked at most every :data:`SLURM_CHECK_S` seconds per job,
  and only where ``squeue`` exists), or
* it is older than its own time limit plus :data:`STALE_GRACE_S` (a job past its time limit
  has been stopped by its executor; this is how claims of jobs on other hosts, e.g. SLURM
  nodes, expire), or
* it cannot be read (an empty or damaged file older than :data:`STALE_GRACE_S`).

A stale claim is taken over: the taker first creates ``<key>.json.takeover`` exclusively (so
two takers cannot both replace it), removes the stale claim, creates its own, and removes
the takeover file.

The directory name starts with a dot, so the run store never lists it.

Examples
--------
>>> import tempfile
>>> exp = tempfile.mkdtemp()
>>> mine = try_claim(exp, "key1", time_limit_s=60)
>>> mine.pid == os.getpid(), try_claim(exp, "key1", time_limit_s=60) is None
(True, True)
>>> holder(exp, "key1") == mine
True
>>> release_claim(exp, "key1", mine)
>>> holder(exp, "key1") is None
True
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: Directory of the claim files inside an experiment directory.
CLAIMS_DIR = ".claims"
#: Seconds added to a claim's time limit before it counts as stale (and the age after which
#: an unreadable claim or takeover file counts as stale).
STALE_GRACE_S = 60.0
#: Seconds an answer of ``squeue`` about a claim's SLURM job is reused.
SLURM_CHECK_S = 30.0
_SQUEUE_ANSWERS: dict[str, tuple[float, bool | None]] = {}


@dataclass(frozen=True)
class Claim:
    """Who trains a group: process id, host name, start time (epoch seconds), time limit (s),
    the SLURM job (``<array>_<task>`` or job id; empty outside SLURM) and the fingerprint of
    the data and resolved settings it trains with (empty: not recorded)."""

    pid: int
    host: str
    started: float
    time_limit_s: float
    slurm_job: str = ""
    fingerprint: str = ""

    def describe(self) -> str:
        """``pid 123 on host node1 since 2026-12-01 05:12:00 UTC``."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"pid {self.pid} on host {self.host} since {when}"


def claim_path(experiment_dir: str | Path, key: str) -> Path:
    """The claim file of group ``key`` in an experiment directory."""
    return Path(experiment_dir) / CLAIMS_DIR / f"{key}.json"


def pid_alive(pid: int) -> bool:
    """True when a process ``pid`` exists on this machine (a zombie counts as gone).

    Examples
    --------
    >>> pid_alive(os.getpid())
    True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:  # a zombie (exited, not yet reaped by its parent) holds nothing
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def read_claim(path: str | Path) -> Claim | None:
    """The claim stored in ``path``; ``None`` when it does not exist or cannot be read."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Claim(int(data["pid"]), str(data["host"]), float(data["started"]), float(data["time_limit_s"]),
                     str(data.get("slurm_job", "")), str(data.get("fingerprint", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_stale(claim: Claim, now: float | None = None) -> bool:
    """True when ``claim`` holds nothing any more (see the module docstring for the rule).

    Examples
    --------
    >>> is_stale(Claim(os.getpid(), socket.gethostname(), time.time(), 60.0))
    False
    >>> is_stale(Claim(os.getpid(), "elsewhere", time.time() - 3600, 60.0))
    True
    """
    now = time.time() if now is None else now
    if claim.host == socket.gethostname() and not pid_alive(claim.pid):
        return True
    if claim.slurm_job and slurm_job_gone(claim.slurm_job):
        return True
    return now - claim.started > claim.time_limit_s + STALE_GRACE_S


def current_slurm_job() -> str:
    """This process's SLURM job (``<array job>_<task>`` for an array task), or ``""``."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return f"{array}_{task}"
    return os.environ.get("SLURM_JOB_ID", "")


def slurm_job_gone(job: str) -> bool | None:
    """True when ``squeue`` no longer lists SLURM job ``job``; ``None`` when it cannot tell
    (no ``squeue`` here, no answer). Answers are reused for :data:`SLURM_CHECK_S` seconds."""
    cached = _SQUEUE_ANSWERS.get(job)
    if cached is not None and time.monotonic() - cached[0] < SLURM_CHECK_S:
        return cached[1]
    answer: bool | None = None
    if shutil.which("squeue") is not None:
        try:
            out = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            answer = not out.stdout.strip()
        elif out is not None and "invalid job id" in out.stderr.lower():
            answer = True
    _SQUEUE_ANSWERS[job] = (time.monotonic(), answer)
    return answer


def _file_age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _create_exclusive(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def holder(experiment_dir: str | Path, key: str) -> Claim | None:
    """The live claim of group ``key``, or ``None`` when it is free (absent or stale)."""
    return _holder_at(claim_path(experiment_dir, key))


def _holder_at(path: Path) -> Claim | None:
    """The live claim stored at ``path`` (an unreadable file younger than the grace counts as
    held), or ``None``."""
    if not path.exists():
        return None
    claim = read_claim(path)
    if claim is None:
        return None if _file_age(path) > STALE_GRACE_S else Claim(-1, "?", time.time(), STALE_GRACE_S)
    return None if is_stale(claim) else claim


def _take_over_stale(path: Path) -> None:
    """Remove the stale claim at ``path`` unless another taker is already at it."""
    lock = path.with_name(path.name + ".takeover")
    if lock.exists() and _file_age(lock) > STALE_GRACE_S:
        lock.unlink(missing_ok=True)  # a taker that died between its two steps
    if not _create_exclusive(lock, str(os.getpid())):
        return
    try:
        if _holder_at(path) is None:  # still stale (or gone) now that this taker holds the lock
            path.unlink(missing_ok=True)
    finally:
        lock.unlink(missing_ok=True)


def try_claim(experiment_dir: str | Path, key: str, time_limit_s: float, fingerprint: str = "") -> Claim | None:
    """Claim group ``key`` for this process; ``None`` when another process holds it.

    A stale claim is taken over (see the module docstring). ``fingerprint`` is recorded in the
    claim, so that another sweep can tell whether this one trains on the same data.
    """
    path = claim_path(experiment_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = Claim(os.getpid(), socket.gethostname(), time.time(), float(time_limit_s), current_slurm_job(),
                 str(fingerprint))
    for _ in range(2):
        if _create_exclusive(path, json.dumps(asdict(mine))):
            return mine
        if holder(experiment_dir, key) is not None:
            return None
        _take_over_stale(path)
    return mine if _create_exclusive(path, json.dumps(asdict(mine))) else None


def release_claim(experiment_dir: str | Path, key: str, claim: Claim) -> None:
    """Remove the claim file of ``key`` if it is still ``claim`` (never another process's)."""
    path = claim_path(experiment_dir, key)
    if read_claim(path) == claim:
        path.unlink(missing_ok=True)


def live_claims(experiment_dir: str | Path) -> dict[str, Claim]:
    """``{key: claim}`` of the held (not stale) claims of an experiment directory."""
    folder = Path(experiment_dir) / CLAIMS_DIR
    if not folder.is_dir():
        return {}
    out = {}
    for path in sorted(folder.glob("*.json")):
        claim = holder(experiment_dir, path.stem)
        if claim is not None:
            out[path.stem] = claim
    return out
