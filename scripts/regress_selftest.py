"""Self-test of the regression gate: false positives (A/A) and detection of injected work.

Scratch commits are made in a throw-away clone of this repository (its committed HEAD):

* ``aa``:  a comment-only change to ``mlpbench/problems/phases.py`` (identical work);
* ``xK``:  the SGD training step does one extra step every K-th call (work x(1 + 1/K)):
           K=2 is the x1.5 of the wall tier, K=20 with 20 counted calls is the x1.05 of the
           instruction-count tier;
* ``uK``:  every SGD training step burns 1/K of its own CPU time more (x(1 + 1/K) on every
           call: the uniform slowdown the CPU-clock wall tier sees).

Tiers (each writes ``results/regress/selftest-<tier>.csv`` after every trial, atomically, and
resumes from it; ``selftest-<tier>.json`` holds the rates):

* ``wall``: one trial = the gate's wall tier (``mlpbench.regress.run_wall``: interleaved
  rounds, paired bootstrap) between the base and one scratch commit, each in its own worker
  process (the base worker is shared by all trials); a CPU hog (busy Python loop) runs during
  every other pair of trials.
* ``insn``: callgrind instruction counts; several scratch trees are counted per valgrind
  process next to the base, so the base is counted once per process (its spread across
  processes shows whether counts are deterministic); plus one full default gate run
  (all tiers) on base vs x1.05, timed.

    python scripts/regress_selftest.py wall --trials 48 [--kinds aa,x20,x10,x5,x2]
    python scripts/regress_selftest.py insn --trials 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mlpbench.gate import select  # noqa: E402
from mlpbench.gate.config import GateConfig  # noqa: E402
from mlpbench.gate.core import regress  # noqa: E402
from mlpbench.gate.git import export_commit  # noqa: E402
from mlpbench.gate.side import Side  # noqa: E402
from mlpbench.gate.stats import count_verdict, exit_code  # noqa: E402
from mlpbench.gate.tiers import Pair  # noqa: E402
from mlpbench.gate.tiers import run_wall as gate_run_wall  # noqa: E402
from mlpbench.measure.asv_suite import enumerate_ids  # noqa: E402

OUT = os.environ.get("MLPBENCH_SELFTEST_OUT", os.path.join(ROOT, "results", "regress"))
INJECT = '''    calls = [0]
    real_step = train_step

    def train_step():  # scratch commit: one extra step every {k}-th call
        calls[0] += 1
        if calls[0] % {k} == 0:
            real_step()
        return real_step()

    return train_step, None
'''


def _machine() -> str:
    """The CPU model and core count of this machine, as recorded with every result."""
    from mlpbench.devices import describe_hardware

    hw = describe_hardware()
    return f"{hw['cpu_model']}, {hw['logical_cores']} logical cores"


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True,
                          text=True).stdout.strip()


INJECT_UNIFORM = '''    import time as _time

    real_step = train_step

    def train_step():  # scratch commit: every call burns 1/{k} of its own CPU time more
        t0 = _time.process_time()
        out = real_step()
        extra = (_time.process_time() - t0) / {k}
        t1 = _time.process_time()
        while _time.process_time() - t1 < extra:
            pass
        return out

    return train_step, None
'''


def scratch_commit(clone: str, base: str, kind: str, trial: int) -> str:
    """A commit on top of ``base``: ``aa`` (comment), ``x<K>`` (an extra step every K calls:
    exact work, but lumpy when a timed block is not a multiple of K calls) or ``u<K>`` (every
    call burns 1/K of its own CPU time more: uniform, for the CPU-clock wall tier only)."""
    git(clone, "checkout", "-q", "--detach", base)
    path = os.path.join(clone, "mlpbench", "problems", "phases.py")
    with open(path) as f:
        text = f.read()
    if kind != "aa":
        marker = "    return train_step, None\n"
        assert text.count(marker) == 1, "phases.py changed: update the injection"
        inject = INJECT_UNIFORM if kind.startswith("u") else INJECT
        text = text.replace(marker, inject.format(k=int(kind[1:])))
    text += f"# self-test scratch commit: {kind}, trial {trial}\n"
    with open(path, "w") as f:
        f.write(text)
    git(clone, "commit", "-qam", f"selftest {kind} {trial}")
    return git(clone, "rev-parse", "HEAD")


def save(rows: list[dict], name: str) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    path = os.path.join(OUT, name)
    df.to_csv(f"{path}.tmp", index=False)
    os.replace(f"{path}.tmp", path)
    return df


def save_json(doc: dict, name: str) -> None:
    path = os.path.join(OUT, name)
    with open(f"{path}.tmp", "w") as f:
        json.dump(doc, f, indent=1, allow_nan=False)
    os.replace(f"{path}.tmp", path)


def load_rows(name: str) -> list[dict]:
    path = os.path.join(OUT, name)
    return pd.read_csv(path).to_dict("records") if os.path.exists(path) else []


def train_step_ids() -> list[str]:
    """The gate's wall-tier points of the SGD training step, from this tree's suite."""
    rows, _ = enumerate_ids()
    found = select.points(rows, select.WALL_BENCH, **select.WALL_AT)
    return [r["id"] for r in found[:select.WALL_POINTS]]


def hog() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_wall(clone: str, base: str, tmp: str, trials: int, rounds: int,
             kinds: tuple[str, ...] = ("aa", "x2")) -> None:
    """Trials through the gate's own ``run_wall``; one base worker serves all trials (started
    once: imports dominate a trial on this VM), the next trial's head worker starts while the
    current trial runs."""
    rows = load_rows("selftest-wall.csv")
    done = {int(r["trial"]) for r in rows}
    cfg = GateConfig(tiers=("wall",), rounds=rounds, wall=tuple(train_step_ids()))
    todo = [t for t in range(trials) if t not in done]
    # kinds cycle; the hog runs during every other cycle (half the trials of each kind)
    plan = {t: (kinds[t % len(kinds)], (t // len(kinds)) % 2 == 1) for t in todo}

    def head_side(t: int) -> Side:
        sha = scratch_commit(clone, base, plan[t][0], t)
        side = Side("head", export_commit(clone, sha, os.path.join(tmp, f"head{t}")), 1, "cpu")
        side.start(cfg.base_limit)
        return side

    base_side = Side("base", export_commit(clone, base, os.path.join(tmp, "base")), 1, "cpu")
    base_side.start(cfg.base_limit)
    for t in todo:
        kind, hogged = plan[t]
        head = head_side(t)
        h = hog() if hogged else None
        t0 = time.time()
        try:
            verdicts = gate_run_wall(Pair([base_side, head], cfg, {}), cfg.wall, cfg,
                                     lambda s: None)
        finally:
            if h:
                h.kill()
                h.wait()
            head.close()
        code = exit_code(verdicts)
        for v in verdicts:
            rows.append({"trial": t, "kind": kind, "hog": hogged, "bench": v.bench,
                         "ratio": v.ratio, "low": v.low, "high": v.high, "verdict": v.verdict,
                         "exit_code": code, "seconds": round(time.time() - t0, 1),
                         "load1": round(os.getloadavg()[0], 2)})
        print(f"wall trial {t} {kind} hog={hogged}: exit {code} "
              f"{[round(v.ratio, 3) for v in verdicts]}", flush=True)
        save(rows, "selftest-wall.csv")
    base_side.close()
    summarize_wall(save(rows, "selftest-wall.csv"), cfg)


def summarize_wall(df: pd.DataFrame, cfg: GateConfig) -> None:
    per = df.groupby(["trial", "kind", "hog"], as_index=False)["exit_code"].first()
    out = {"config": {"factor": cfg.factor, "rounds": cfg.rounds, "blocks": cfg.blocks,
                      "clock": cfg.clock, "threads": cfg.threads, "benches": list(cfg.wall)},
           "machine": _machine(), "trials": int(len(per)),
           "median_trial_seconds": float(df.groupby("trial")["seconds"].first().median())}
    for kind in sorted(df.kind.unique()):
        for hogged in (False, True):
            sel = per[(per.kind == kind) & (per.hog == hogged)]
            flagged = int((sel.exit_code == 1).sum())
            out[f"{kind}_{'hog' if hogged else 'quiet'}"] = {"trials": int(len(sel)),
                                                            "exit_1": flagged}
        sel = per[per.kind == kind]
        out[f"{kind}_rate_exit_1"] = float((sel.exit_code == 1).mean()) if len(sel) else None
    # per benchmark and kind: how often the benchmark itself was flagged (the detection curve)
    out["flagged_per_bench"] = {
        f"{k} {b}": {"trials": int(len(g)), "regressed": int((g.verdict == "regressed").sum()),
                     "ratio_min": float(g.ratio.min()), "ratio_max": float(g.ratio.max())}
        for (k, b), g in df.groupby(["kind", "bench"])}
    aa = df[df.kind == "aa"].dropna(subset=["low", "high"])
    covers = (aa.low <= 1) & (aa.high >= 1)
    # per benchmark: how often an A/A interval holds 1 (the interval's real coverage)
    out["aa_interval_covers_1"] = {b: {"trials": int(len(g)), "covered": int(covers[g.index].sum())}
                                   for b, g in aa.groupby("bench")}
    save_json(out, "selftest-wall.json")
    print(json.dumps(out, indent=1))


def run_insn(clone: str, base: str, tmp: str, trials: int, per_process: int) -> None:
    from mlpbench.measure.callgrind import count_instructions

    bench = train_step_ids()[0]
    number = GateConfig().insn_number
    rows = load_rows("selftest-insn.csv")
    base_root = export_commit(clone, base, os.path.join(tmp, "base"))
    todo = [(t, kind) for t in range(trials) for kind in ("aa", "x20")
            if not any(r["trial"] == t and r["kind"] == kind for r in rows)]
    for start in range(0, len(todo), per_process):
        group = todo[start:start + per_process]
        roots = [base_root]
        for t, kind in group:
            sha = scratch_commit(clone, base, kind, t)
            roots.append(export_commit(clone, sha, os.path.join(tmp, f"{kind}-{t}")))
        t0 = time.time()
        counts = count_instructions(roots, bench, number=number)
        secs = round(time.time() - t0, 1)
        proc = start // per_process
        rows.append({"process": proc, "trial": -1, "kind": "base", "count": counts[0]["value"],
                     "ratio": 1.0, "verdict": "", "seconds": secs})
        for (t, kind), c in zip(group, counts[1:], strict=True):
            v = count_verdict(bench, counts[0]["value"], c["value"], GateConfig().insn_factor)
            rows.append({"process": proc, "trial": t, "kind": kind, "count": c["value"],
                         "ratio": v.ratio, "verdict": v.verdict, "seconds": secs})
        print(f"insn process {proc}: {len(group)} trees, {secs} s", flush=True)
        save(rows, "selftest-insn.csv")
    df = save(rows, "selftest-insn.csv")
    gate = full_gate(clone, base)
    trials_df = df[df.kind != "base"]
    basec = df[df.kind == "base"]["count"]
    out = {"bench": bench, "calls_counted": number, "insn_factor": GateConfig().insn_factor,
           "machine": _machine(),
           "base_counts": [int(c) for c in basec],
           "base_rel_spread": float((basec.max() - basec.min()) / basec.min()),
           "aa_rel_spread_vs_base": float((trials_df[trials_df.kind == "aa"]["ratio"] - 1)
                                          .abs().max()),
           "full_gate": gate}
    for kind in ("aa", "x20"):
        sel = trials_df[trials_df.kind == kind]
        out[kind] = {"trials": int(len(sel)), "regressed": int((sel.verdict == "regressed").sum()),
                     "ratio_min": float(sel.ratio.min()), "ratio_max": float(sel.ratio.max())}
    save_json(out, "selftest-insn.json")
    print(json.dumps(out, indent=1))


def full_gate(clone: str, base: str) -> dict:
    """One default gate run (all tiers, default subset) on base vs x1.05: exit code, time."""
    sha = scratch_commit(clone, base, "x20", 999)
    t0 = time.time()
    code = regress(base, sha, repo=clone, out=os.path.join(OUT, "full-gate"),
                   echo=lambda s: None)
    return {"exit_code": code, "seconds": round(time.time() - t0, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tier", choices=["wall", "insn"])
    ap.add_argument("--trials", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=GateConfig().rounds)
    ap.add_argument("--per-process", type=int, default=10, help="insn: trees per valgrind run")
    ap.add_argument("--kinds", default="aa,x2",
                    help="wall: scratch kinds cycled over trials (aa, xK, uK: x(1 + 1/K))")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlpbench-selftest-") as tmp:
        clone = os.path.join(tmp, "clone")
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        for k, v in (("user.email", "selftest@mlpbench"), ("user.name", "selftest")):
            git(clone, "config", k, v)
        base = git(clone, "rev-parse", "HEAD")
        if args.tier == "wall":
            run_wall(clone, base, tmp, args.trials or 48, args.rounds,
                     tuple(k.strip() for k in args.kinds.split(",")))
        else:
            run_insn(clone, base, tmp, args.trials or 10, args.per_process)


if __name__ == "__main__":
    main()
