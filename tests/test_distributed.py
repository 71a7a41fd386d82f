"""Tests of the distributed (DDP) study: formulas, derived columns, analysis, CLI robustness,
and real torchrun launches (single node, a crash, a hang, a simulated two-node run)."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch

from mlpbench.analysis.distributed import allreduce_model_s, project, scaling_summary
from mlpbench.cli import main
from mlpbench.measure.collectives import busbw_allreduce, ring_allreduce_seconds, size_ladder
from mlpbench.studies.distributed import (
    DistConfig,
    add_derived,
    free_port,
    per_worker_batch,
    plan_for,
)
from mlpbench.studies.distributed_launch import kill_tree

TINY = ["--input-dims", "4", "--widths", "8", "--depths", "1", "--batches", "8",
        "--steps", "3", "--warmup", "1", "--quiet"]


def _strict_json(path: Path) -> dict:
    def bad(token: str):
        raise ValueError(f"non-strict JSON token {token}")
    return json.loads(path.read_text(), parse_constant=bad)


def _no_children() -> list:
    return [p for p in psutil.Process().children(recursive=True) if p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE]


# ---- formulas (nccl-tests definitions, ring model) -----------------------------------------

@pytest.mark.parametrize("n", [2, 3, 8, 64])
def test_ring_model_inverts_the_busbw_definition(n):
    nbytes, busbw = 37_000_000, 3.2e9
    t = ring_allreduce_seconds(nbytes, n, busbw)
    assert busbw_allreduce(nbytes / t, n) == pytest.approx(busbw, rel=1e-12)


def test_busbw_factor_and_single_rank():
    assert busbw_allreduce(1.0, 2) == 1.0  # 2(n-1)/n = 1 for two ranks
    assert busbw_allreduce(1.0, 8) == pytest.approx(1.75)
    assert busbw_allreduce(5.0, 1) == 0.0 and ring_allreduce_seconds(1e6, 1, 1e9) == 0.0


def test_size_ladder_covers_the_largest_gradient():
    ladder = size_ladder(4 * 9_111_001)
    assert ladder[0] == 1024 and ladder[-1] >= 4 * 9_111_001 > ladder[-2]
    assert all(b == 4 * a for a, b in zip(ladder[:-1], ladder[1:], strict=True))


def test_per_worker_batch_strong_and_weak():
    assert per_worker_batch({"scaling": "strong", "batch": 32}, 2) == 16
    assert per_worker_batch({"scaling": "weak", "batch": 32}, 2) == 32
    assert per_worker_batch({"scaling": "strong", "batch": 33}, 2) is None


def test_plan_merges_identical_units_at_world_size_one(tmp_path):
    c = DistConfig(world_sizes=(1, 2), batches=(32,))
    assert len(plan_for(c, 1, tmp_path / "r.json")["units"]) == 1  # strong == weak at P=1
    assert len(plan_for(c, 2, tmp_path / "r.json")["units"]) == 2


# ---- derived columns and analysis, against hand-computed values ---------------------------

def _rows(step1=0.010, step2=0.008, compute2=0.006, ar2=0.004, scaling="strong"):
    base = {"round": 0, "nodes": 1, "backend": "gloo", "scaling": scaling, "input_dim": 4,
            "width": 8, "depth": 1, "batch": 8, "bucket_cap_mb": 25.0, "params": 49,
            "status": "ok", "reason": ""}
    b2 = 4 if scaling == "strong" else 8
    return [{**base, "world_size": 1, "batch_per_worker": 8, "step_s": step1,
             "compute_s": step1, "allreduce_s": 1e-5},
            {**base, "world_size": 2, "batch_per_worker": b2, "step_s": step2,
             "compute_s": compute2, "allreduce_s": ar2}]


@pytest.mark.parametrize("scaling", ["strong", "weak"])
def test_efficiency_comm_share_overlap(scaling):
    f = add_derived(pd.DataFrame(_rows(scaling=scaling)))
    two = f[f["world_size"] == 2].iloc[0]
    global_batch = 8 if scaling == "strong" else 16
    assert two["samples_per_s"] == pytest.approx(global_batch / 0.008)
    assert two["efficiency"] == pytest.approx((global_batch / 0.008) / (2 * 8 / 0.010))
    assert two["comm_share"] == pytest.approx(0.002 / 0.008)
    assert two["overlap"] == pytest.approx((0.004 - 0.002) / 0.004)
    assert f[f["world_size"] == 1]["efficiency"].iloc[0] == pytest.approx(1.0)


def test_summary_medians_match_numpy():
    rows = []
    for rnd, step2 in enumerate([0.008, 0.009, 0.020]):
        for r in _rows(step2=step2):
            rows.append({**r, "round": rnd})
    s = scaling_summary(add_derived(pd.DataFrame(rows)))
    two = s[s["world_size"] == 2].iloc[0]
    effs = [(8 / t) / (2 * 8 / 0.010) for t in (0.008, 0.009, 0.020)]
    assert two["rounds"] == 3
    assert two["efficiency"] == pytest.approx(np.median(effs))
    assert two["efficiency_q25"] == pytest.approx(np.percentile(effs, 25))


def test_projection_uses_ring_model_and_linear_compute():
    s = scaling_summary(add_derived(pd.DataFrame(_rows())))
    coll = pd.DataFrame({"round": 0, "world_size": 2, "bytes": [1024, 4096],
                         "median_s": [2e-4, 3e-4], "busbw_gbps": [0.5, 1.0]})
    p = project(s, coll, world_sizes=(8,))
    row = p.iloc[0]
    latency = 2e-4 / 2  # smallest message time over the 2(n-1) = 2 hops of two ranks
    comm = 2 * 7 / 8 * 196 / 0.5e9 + 1 * 2 * 7 * latency  # 196 B nearest 1024 B in log
    assert row["kind"] == "projection" and row["allreduce_s"] == pytest.approx(comm)
    assert row["compute_s"] == pytest.approx(0.010 / 8)  # strong: batch 8 -> 1 per worker
    assert row["efficiency"] == pytest.approx((8 / (0.010 / 8 + comm)) / (8 * 8 / 0.010))
    assert allreduce_model_s(4 * 2**20, 2**20, 2, coll, 0.0) == pytest.approx(
        4 * 2**20 / 1e9)  # 4 buckets of 1 MiB at the 4096-B bandwidth (nearest in log)


# ---- bad input: one line, exit 2, no process left --------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--backend", "mpi"], "unknown backend"),
    (["--world-sizes", str((os.cpu_count() or 1) + 1)], "exceed"),
    (["--world-sizes", "0"], "positive"),
    (["--scaling", "diagonal"], "unknown scaling"),
    (["--nnodes", "2", "--world-sizes", "2"], "master-port"),
    (["--nnodes", "2", "--master-port", "29999", "--world-sizes", "3"], "multiple"),
])
def test_bad_input_exit_2_one_line(argv, words, tmp_path, capsys):
    assert main(["distributed", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1
    assert _no_children() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_nccl_without_gpu_is_refused(tmp_path, capsys):
    assert main(["distributed", "--backend", "nccl", "--out", str(tmp_path)]) == 2
    assert "CUDA" in capsys.readouterr().err and _no_children() == []


def test_port_in_use_is_refused(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["distributed", "--master-port", str(port), "--out", str(tmp_path)]) == 2
    assert "not free" in capsys.readouterr().err and _no_children() == []


def test_kill_tree_leaves_no_grandchild():
    code = "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c'," \
           "'import time; time.sleep(60)'], start_new_session=True); time.sleep(60)"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    time.sleep(1.0)
    kill_tree(proc.pid, grace_s=2)
    proc.wait()
    assert _no_children() == []


# ---- real torchrun launches --------------------------------------------------------------

@pytest.mark.slow
def test_single_node_end_to_end(tmp_path, capsys):
    assert main(["distributed", "--world-sizes", "1,2", *TINY, "--out", str(tmp_path)]) == 0
    f = pd.read_csv(tmp_path / "distributed.csv")
    assert set(f["status"]) == {"ok"} and len(f) == 4
    assert {"world_size", "nodes", "backend", "scaling", "efficiency", "comm_share",
            "reason"} <= set(f.columns)
    assert (f[f["world_size"] == 1]["efficiency"] == 1.0).all()
    ar = f.groupby("world_size")["allreduce_s"].median()
    assert ar[2] > ar[1]  # loopback TCP exchange vs a one-rank no-op: physical
    coll = pd.read_csv(tmp_path / "collectives.csv")
    two = coll[coll["world_size"] == 2]
    assert np.allclose(two["busbw_gbps"], two["bytes"] / two["median_s"] / 1e9)
    meta = _strict_json(tmp_path / "distributed.json")
    assert meta["hardware"]["machine_id"] == f["machine_id"].iloc[0]
    assert meta["node_hardware"][0]["node_rank"] == 0 and _no_children() == []


@pytest.mark.slow
def test_crash_becomes_failed_row(tmp_path):
    assert main(["distributed", "--world-sizes", "2", *TINY, "--no-collectives",
                 "--inject-fault", "crash", "--out", str(tmp_path)]) == 0
    f = pd.read_csv(tmp_path / "distributed.csv")
    assert set(f["status"]) == {"failed"}
    assert f["reason"].str.contains("injected fault").all() and _no_children() == []


@pytest.mark.slow
def test_hang_is_killed_at_the_launcher_timeout(tmp_path):
    start = time.monotonic()
    assert main(["distributed", "--world-sizes", "2", *TINY, "--no-collectives",
                 "--inject-fault", "hang", "--timeout", "12", "--pg-timeout", "300",
                 "--out", str(tmp_path)]) == 0
    assert time.monotonic() - start < 12 + 2 * 10 + 15  # timeout + grace periods + startup
    f = pd.read_csv(tmp_path / "distributed.csv")
    assert set(f["status"]) == {"failed"} and f["reason"].str.contains("timed out").all()
    assert _no_children() == []


def _node(argv: list[str]) -> None:
    os._exit(main(argv))


@pytest.mark.slow
def test_two_node_simulation(tmp_path):
    """Two torchrun agents on 127.0.0.1, --nnodes 2, world size 2, within 60 s.

    Each node is ``mlpbench distributed`` in a forked child of this process (a fresh
    interpreter would only add an ``import torch``)."""
    port = free_port()
    argv = ["distributed", "--nnodes", "2", "--master-addr", "127.0.0.1", "--master-port",
            str(port), "--world-sizes", "2", *TINY]
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_node, args=([*argv, "--node-rank", str(k), "--out",
                                              str(tmp_path / f"n{k}")],)) for k in (0, 1)]
    start = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=max(1.0, start + 60 - time.monotonic()))
    if any(p.exitcode is None for p in procs):
        for p in procs:
            kill_tree(p.pid, grace_s=2)
        pytest.fail("two-node simulation took more than 60 s")
    assert [p.exitcode for p in procs] == [0, 0]
    f = pd.read_csv(tmp_path / "n0" / "distributed.csv")
    assert set(f["status"]) == {"ok"} and set(f["nodes"]) == {2} and set(f["world_size"]) == {2}
    assert math.isnan(f["efficiency"].iloc[0])  # no world-size-1 baseline in this run
    meta = _strict_json(tmp_path / "n0" / "distributed.json")
    assert [h["node_rank"] for h in meta["node_hardware"]] == [0, 1]
    assert meta["hardware"]["machine_id"] == f["machine_id"].iloc[0]
    assert not (tmp_path / "n1").exists() and _no_children() == []


def test_figures_return_axes_with_units():
    from mlpbench.report import fig_distributed as fig

    s = scaling_summary(add_derived(pd.DataFrame(_rows())))
    coll = pd.DataFrame({"round": 0, "world_size": 2, "bytes": [1024, 4096],
                         "median_s": [2e-4, 3e-4], "busbw_gbps": [0.5, 1.0]})
    table = pd.concat([s, project(s, coll)], ignore_index=True)
    ax = fig.scaling_efficiency(table)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("projection" in t for t in labels) and any("measured" in t for t in labels)
    assert "world size" in fig.comm_share(table).get_xlabel()
    assert "GB/s" in fig.bus_bandwidth(coll).get_ylabel()


@pytest.mark.gpu
@pytest.mark.slow
def test_nccl_one_gpu(tmp_path):
    assert main(["distributed", "--backend", "nccl", "--world-sizes", "1", *TINY,
                 "--out", str(tmp_path)]) == 0
    f = pd.read_csv(tmp_path / "distributed.csv")
    assert set(f["status"]) == {"ok"} and set(f["backend"]) == {"nccl"}


def test_collectives_summary_medians():
    from mlpbench.analysis.distributed import collectives_summary

    coll = pd.DataFrame({"backend": "gloo", "nodes": 1, "world_size": 2, "bytes": 1024,
                         "round": [0, 1, 2], "median_s": [1.0, 2.0, 9.0],
                         "algbw_gbps": [3.0, 1.0, 2.0], "busbw_gbps": [3.0, 1.0, 2.0]})
    row = collectives_summary(coll).iloc[0]
    assert row["rounds"] == 3 and row["median_s"] == 2.0 and row["busbw_gbps_q75"] == 2.5


def test_resume_keeps_only_finished_launches(tmp_path):
    from mlpbench.results import RunFolder
    from mlpbench.studies.distributed import STUDY, _done_launches, add_derived

    rows = [{**r, "world_size": ws, "round": rnd, "status": st}
            for rnd, ws, st in [(0, 1, "ok"), (0, 2, "failed"), (1, 1, "ok")]
            for r in _rows()[:1]]
    add_derived(pd.DataFrame(rows)).to_csv(tmp_path / "distributed.csv", index=False)
    with RunFolder(tmp_path, STUDY, resume=True) as folder:
        kept, coll, done = _done_launches(folder)
    assert done == {(0, 1), (1, 1)} and len(kept) == 2 and coll == []


def test_unknown_evidence_survives_the_result_file(tmp_path, monkeypatch):
    """A probe shorter than one /proc/stat jiffy has no steal fraction (NaN); rank 0's
    result file must still be written (JSON has no NaN) and read back as unknown."""
    from mlpbench.measure import contention
    from mlpbench.studies import distributed_worker as w

    monkeypatch.setattr(contention, "_steal", lambda: (5.0, 100.0))  # no jiffy passes
    with contention.Probe(1) as probe:
        pass
    ev = contention.columns(probe)
    assert math.isnan(ev["steal_fraction"])
    out = tmp_path / "result.json"
    w._atomic_json(out, {"units": [{"step_s": 0.1, **ev}], "x": [math.inf, 1.0]})
    back = json.loads(out.read_text())
    assert back["units"][0]["steal_fraction"] is None and back["x"] == [None, 1.0]
    assert back["units"][0]["main_cpu_share"] == ev["main_cpu_share"]
    frame = pd.DataFrame(back["units"])
    assert frame["steal_fraction"].isna().all()
