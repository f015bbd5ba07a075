"""A real single-node SLURM cluster on localhost, for tests: munged, MariaDB, slurmdbd, slurmctld, slurmd.

Everything lives under one directory (configuration, munge key and socket, state, spool,
logs); nothing in /etc is read or written, and the daemons are this process's children,
stopped by :meth:`LocalSlurmCluster.stop`. Accounting is on (slurmdbd on a private MariaDB
server), as on production clusters: ``sacct`` answers, which is how submitit learns that a job
was cancelled or failed without writing a result. Clients (``sbatch``, ``squeue``, ``scancel``,
submitit) find the cluster through the ``SLURM_CONF`` variable of :meth:`LocalSlurmCluster.env`.

Needs Debian's ``slurm-wlm``, ``slurmdbd``, ``mariadb-server`` and ``munge`` packages (``make system-deps``) and root (slurmd
starts job steps as the submitting user). Imports nothing from ``ogae_core``.

Command line (for trying the cluster by hand)::

    python -m tests.slurm.local_cluster /tmp/ogae-slurm   # starts, prints `export SLURM_CONF=...`, waits for Ctrl-C

Examples
--------
>>> missing_programs(["sh"])
[]
>>> "slurmd" in REQUIRED_PROGRAMS
True
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REQUIRED_PROGRAMS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd", "sbatch",
                     "squeue", "sinfo", "scancel", "srun", "sacct")
INSTALL_HINT = "make system-deps  (as root; apt-get install slurm-wlm slurmdbd mariadb-server munge)"


def missing_programs(programs=REQUIRED_PROGRAMS) -> list[str]:
    """The programs of ``programs`` that are not on PATH (nor in /usr/sbin).

    Examples
    --------
    >>> missing_programs(["no-such-program-ogae"])
    ['no-such-program-ogae']
    """
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [p for p in programs if shutil.which(p, path=path) is None]


def why_unavailable() -> str | None:
    """A sentence saying why no local cluster can start here, or None when it can."""
    missing = missing_programs()
    if missing:
        return f"SLURM/munge/MariaDB not installed ({', '.join(missing)} missing)"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (slurmd launches jobs as the submitting user)"
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def machine_memory_mb() -> int:
    """Total memory of this machine in MB (from /proc/meminfo)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("MemTotal not found in /proc/meminfo")


def slurmdbd_conf(base: Path, dbd_port: int, mysql_port: int, munge_socket: Path) -> str:
    """The text of slurmdbd.conf: accounting in a MariaDB server on 127.0.0.1.

    Examples
    --------
    >>> "StoragePort=7003" in slurmdbd_conf(Path("/x"), 7002, 7003, Path("/x/munge.sock"))
    True
    """
    return "\n".join([
        "AuthType=auth/munge",
        f"AuthInfo=socket={munge_socket}",
        "DbdHost=localhost",
        "DbdAddr=127.0.0.1",
        f"DbdPort={dbd_port}",
        "SlurmUser=root",
        f"PidFile={base / 'slurmdbd.pid'}",
        f"LogFile={base / 'log' / 'slurmdbd.log'}",
        "DebugLevel=info",
        "StorageType=accounting_storage/mysql",
        "StorageHost=127.0.0.1",
        f"StoragePort={mysql_port}",
        "StorageUser=root",
        "StorageLoc=slurm_acct_db",
        "",
    ])


def slurm_conf(base: Path, node: str, cpus: int, memory_mb: int, ctld_port: int, slurmd_port: int,
               munge_socket: Path, dbd_port: int) -> str:
    """The text of a localhost slurm.conf: one node, one default partition, no cgroups.

    Examples
    --------
    >>> text = slurm_conf(Path("/x"), "vm", 2, 1000, 7000, 7001, Path("/x/munge.sock"), 7002)
    >>> "NodeName=vm NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000" in text
    True
    """
    return "\n".join([
        "ClusterName=ogaetest",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmdPort={slurmd_port}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={munge_socket}",
        f"StateSaveLocation={base / 'state'}",
        f"SlurmdSpoolDir={base / 'spool'}",
        f"SlurmctldPidFile={base / 'slurmctld.pid'}",
        f"SlurmdPidFile={base / 'slurmd.pid'}",
        f"SlurmctldLogFile={base / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={base / 'log' / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/slurmdbd",
        "AccountingStorageHost=127.0.0.1",
        f"AccountingStoragePort={dbd_port}",
        f"AccountingStoragePass={munge_socket}",  # with slurmdbd: the munge socket of that connection
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "ReturnToService=2",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=2",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        "InactiveLimit=0",
        "MinJobAge=600",
        "KillWait=5",
        "Waittime=0",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        f"NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO",
        "",
    ])


class LocalSlurmCluster:
    """Start, use and stop a one-node SLURM cluster whose files all live under ``base``.

    Parameters
    ----------
    base : path
        Empty or new directory for configuration, state and logs.
    cpus : int, optional
        CPUs of the node (default: this machine's).
    """

    def __init__(self, base: str | Path, cpus: int | None = None) -> None:
        self.base = Path(base).resolve()
        self.cpus = int(cpus or os.cpu_count() or 1)
        self.node = socket.gethostname().split(".")[0]
        self.conf = self.base / "slurm.conf"
        self.munge_socket = self.base / "munge" / "munge.socket.2"
        self.processes: dict[str, subprocess.Popen] = {}

    def env(self, base_env: dict | None = None) -> dict:
        """``base_env`` (default ``os.environ``) plus ``SLURM_CONF`` pointing at this cluster."""
        env = dict(os.environ if base_env is None else base_env)
        env["SLURM_CONF"] = str(self.conf)
        env.pop("SLURM_JOB_ID", None)
        return env

    def write_config(self) -> None:
        """Write slurm.conf, slurmdbd.conf and the munge key; create the state directories.

        No cgroup plugin is used (proctrack/linuxproc, task/none), so there is no cgroup.conf.
        """
        for sub in ("state", "spool", "log", "munge", "mysql"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.base / "munge", 0o700)
        key = self.base / "munge" / "munge.key"
        key.write_bytes(secrets.token_bytes(128))
        os.chmod(key, 0o400)
        self.mysql_port, self.dbd_port = free_port(), free_port()
        memory = max(256, int(machine_memory_mb() * 0.9))
        self.conf.write_text(slurm_conf(self.base, self.node, self.cpus, memory, free_port(), free_port(),
                                        self.munge_socket, self.dbd_port))
        dbd = self.base / "slurmdbd.conf"  # slurmdbd reads it next to $SLURM_CONF; it must be 0600
        dbd.write_text(slurmdbd_conf(self.base, self.dbd_port, self.mysql_port, self.munge_socket))
        os.chmod(dbd, 0o600)

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.base / "log" / f"{name}.out", "ab")
        self.processes[name] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                                env=self.env(), start_new_session=True)
        log.close()

    def start(self, timeout: float = 60.0) -> "LocalSlurmCluster":
        """Write the configuration, start munged, slurmctld, slurmd; wait until the node is idle."""
        self.write_config()
        m = self.base / "munge"
        self._spawn("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--log-file={m / 'munged.log'}", f"--seed-file={m / 'munged.seed'}"])
        self._wait_for(lambda: self.munge_socket.exists(), timeout, "munged socket")
        self.start_database(timeout)
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        self._wait_for(lambda: port_open(self.dbd_port), timeout, "slurmdbd listening")
        self._spawn("slurmctld", ["slurmctld", "-D", "-c", "-i", "-f", str(self.conf)])
        self._wait_for(lambda: self._run(["sinfo", "-h"]).returncode == 0, timeout, "slurmctld answering sinfo")
        self._spawn("slurmd", ["slurmd", "-D", "-f", str(self.conf), "-N", self.node])
        self._wait_for(lambda: self.node_state() == "idle", timeout, "node idle in sinfo")
        self._wait_for(lambda: self._run(["sacct", "-n", "-X"]).returncode == 0, timeout, "sacct answering")
        return self

    def start_database(self, timeout: float = 60.0) -> None:
        """A private MariaDB server for slurmdbd: data under ``base/mysql``, TCP on 127.0.0.1,
        no grant tables (only this machine's processes reach it, for the session)."""
        data = self.base / "mysql"
        init = subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={data / 'data'}",
                               "--auth-root-authentication-method=normal", "--skip-test-db"],
                              capture_output=True, text=True, timeout=timeout)
        if init.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{init.stdout}\n{init.stderr}")
        self._spawn("mariadbd", ["mariadbd", "--no-defaults", "--user=root", f"--datadir={data / 'data'}",
                                 f"--socket={data / 'mysqld.sock'}", f"--pid-file={data / 'mysqld.pid'}",
                                 f"--port={self.mysql_port}", "--bind-address=127.0.0.1", "--skip-grant-tables",
                                 "--innodb-buffer-pool-size=64M", "--innodb-lock-wait-timeout=900",
                                 f"--log-error={self.base / 'log' / 'mariadbd.log'}"])
        self._wait_for(lambda: port_open(self.mysql_port), timeout, "MariaDB listening")

    def _run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.env(), capture_output=True, text=True, timeout=30)

    def node_state(self) -> str:
        """The node's state as ``sinfo`` prints it (e.g. ``idle``, ``mix``, ``down*``)."""
        out = self._run(["sinfo", "-h", "-N", "-o", "%t"])
        return out.stdout.strip() if out.returncode == 0 else ""

    def queue(self) -> list[str]:
        """Job ids (``%i``) still in the queue, one per array task."""
        out = self._run(["squeue", "-h", "-r", "-o", "%i"])
        return out.stdout.split()

    def wait_idle(self, timeout: float = 600.0) -> None:
        """Wait until no job is queued or running."""
        self._wait_for(lambda: not self.queue(), timeout, "empty queue")

    def _wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [n for n, p in self.processes.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}:\n{self.logs_tail()}")
            if condition():
                return
            time.sleep(0.5)
        raise TimeoutError(f"local SLURM cluster: no {what} within {timeout:.0f} s:\n{self.logs_tail()}")

    def logs_tail(self, lines: int = 15) -> str:
        """The last lines of every daemon log (for error messages)."""
        parts = []
        for log in sorted((self.base / "log").glob("*")) + [self.base / "munge" / "munged.log"]:
            if log.is_file():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def stop(self, timeout: float = 20.0) -> None:
        """Cancel every job, then stop slurmd, slurmctld, slurmdbd, MariaDB and munged (in that order)."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self._run(["scancel", "--full", "--quiet", "--user", str(os.geteuid())])
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def __enter__(self) -> "LocalSlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Start a cluster in the given directory and keep it up until Ctrl-C."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tests.slurm.local_cluster DIR", file=sys.stderr)
        return 2
    reason = why_unavailable()
    if reason:
        print(f"{reason}; install with: {INSTALL_HINT}", file=sys.stderr)
        return 2
    with LocalSlurmCluster(argv[0]) as cluster:
        print(f"export SLURM_CONF={cluster.conf}   # node {cluster.node} idle; Ctrl-C stops the cluster", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
