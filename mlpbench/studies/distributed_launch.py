"""Start one ``torchrun`` for a distributed plan, bounded in time, and leave no process behind.

torchrun (``python -m torch.distributed.run``, static rendezvous: ``--nnodes``,
``--node-rank``, ``--master-addr``, ``--master-port``) starts its workers in sessions of
their own, so killing torchrun's process group does not reach them: :func:`kill_tree`
collects every descendant first, asks them to stop (SIGTERM: torchrun then stops its
workers), and kills whatever is left after a grace period.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil

import mlpbench

#: seconds a process gets between SIGTERM and SIGKILL
GRACE_S = 10.0


def kill_tree(pid: int, grace_s: float = GRACE_S) -> None:
    """Terminate ``pid`` and all its descendants; SIGKILL those alive after ``grace_s``."""
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)


def torchrun_command(plan_path: Path, c: Any, ws: int, port: int) -> list[str]:
    """The torchrun command line of one launch (``c`` is a ``DistConfig``)."""
    return [sys.executable, "-m", "torch.distributed.run",
            f"--nnodes={c.nnodes}", f"--nproc-per-node={ws // c.nnodes}",
            f"--node-rank={c.node_rank}", f"--master-addr={c.master_addr}",
            f"--master-port={port}", "--max-restarts=0",
            "-m", "mlpbench.studies.distributed_worker", str(plan_path)]


def _env(threads: int) -> dict[str, str]:
    """This process's environment, with this mlpbench importable and the thread count set."""
    env = dict(os.environ)
    root = str(Path(mlpbench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def _failure(result_dir: Path, log_path: Path, rc: int) -> str:
    """A one-line reason: a rank's own error line, else the log's last line, else the code."""
    errors = sorted(result_dir.glob("error-rank*.txt"))
    if errors:
        return errors[0].read_text().strip()
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()]
    return f"torchrun exit code {rc}" + (f": {lines[-1].strip()[:200]}" if lines else "")


def launch(plan: dict, c: Any, ws: int, port: int) -> tuple[dict, str | None, Path]:
    """Run one plan under torchrun; return (rank 0's result, failure reason or None, log).

    The plan's ``result_path`` folder holds the plan, the log and the ranks' error lines.
    """
    result_path = Path(plan["result_path"])
    plan_path = result_path.with_name("plan.json")
    plan_path.write_text(json.dumps(plan))
    log_path = result_path.with_name("torchrun.log")
    failure = None
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(torchrun_command(plan_path, c, ws, port), stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=_env(c.threads))
        try:
            rc = proc.wait(timeout=c.launch_timeout_s)
            if rc != 0:
                failure = _failure(result_path.parent, log_path, rc)
        except subprocess.TimeoutExpired:
            failure = f"timed out after {c.launch_timeout_s:g} s (launcher timeout)"
        finally:
            kill_tree(proc.pid)
            proc.wait()
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if failure is None and c.node_rank == 0 and not result.get("done"):
        failure = "torchrun exited 0 but rank 0 wrote no complete result"
    return result, failure, log_path
