"""Start one ``torchrun`` for a distributed plan, bounded in time, and leave no process behind.

The torchrun agent (``torch.distributed.run.main``, static rendezvous: ``--nnodes``,
``--node-rank``, ``--master-addr``, ``--master-port``) runs in a forked child of this
process, in a session of its own, with its output in a log file: forking saves the agent a
fresh ``import torch`` (seconds on a busy 2-core machine); its workers are fresh
interpreters as under the ``torchrun`` command. torchrun starts its workers in sessions of
their own, so killing the agent's process group does not reach them: :func:`kill_tree`
collects every descendant first, asks them to stop (SIGTERM: the agent then stops its
workers), and kills whatever is left after a grace period.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import traceback
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


def torchrun_args(plan_path: Path, c: Any, ws: int, port: int) -> list[str]:
    """The torchrun arguments of one launch (``c`` is a ``DistConfig``): the same as
    ``torchrun ARGS`` on the command line."""
    return [f"--nnodes={c.nnodes}", f"--nproc-per-node={ws // c.nnodes}",
            f"--node-rank={c.node_rank}", f"--master-addr={c.master_addr}",
            f"--master-port={port}", "--max-restarts=0",
            "-m", "mlpbench.studies.distributed_worker", str(plan_path)]


def _agent(args: list[str], log_path: str, threads: int) -> None:
    """Body of the forked agent: own session, output to the log, environment, torchrun."""
    os.setsid()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    root = str(Path(mlpbench.__file__).resolve().parent.parent)  # workers import this mlpbench
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH"))
                                               if p)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    code = 0
    try:
        from torch.distributed.run import main

        main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the agent's failure is the launch's reason
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _failure(result_dir: Path, log_path: Path, rc: int) -> str:
    """A one-line reason: a rank's own error line, else the log's last line, else the code."""
    errors = sorted(result_dir.glob("error-rank*.txt"))
    if errors:
        return errors[0].read_text().strip()
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    lines = [ln for ln in text.splitlines() if ln.strip()]
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
    proc = multiprocessing.get_context("fork").Process(
        target=_agent, args=(torchrun_args(plan_path, c, ws, port), str(log_path), c.threads))
    proc.start()
    try:
        proc.join(timeout=c.launch_timeout_s)
        if proc.exitcode is None:
            failure = f"timed out after {c.launch_timeout_s:g} s (launcher timeout)"
        elif proc.exitcode != 0:
            failure = _failure(result_path.parent, log_path, proc.exitcode)
    finally:
        kill_tree(proc.pid)
        proc.join()
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    if failure is None and c.node_rank == 0 and not result.get("done"):
        failure = "torchrun exited 0 but rank 0 wrote no complete result"
    return result, failure, log_path
