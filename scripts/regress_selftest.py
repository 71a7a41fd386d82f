"""Does ``mlpbench regress`` catch real slowdowns, and stay quiet on identical code?

In a throw-away clone of the repository's committed HEAD this script makes commits:
``base``; ``aa-1..aa-N``, identical code (only a marker file differs); and ``slow-F``,
where the benchmarked training step (``mlpbench/phases.py``) spins until it has taken F
times its own duration. Each commit is benchmarked with ``asv run --python=same
--set-commit-hash`` (``ASV_PYTHONPATH`` points the benchmarks at the clone's code), then
``mlpbench regress base X --factor ...`` is asked for its verdict.

Reports the false-positive rate over the A/A comparisons and, per slowdown factor, the
fraction of runs flagged. Usage:

    python scripts/regress_selftest.py [--aa 5] [--factors 1.5,1.2,1.1] [--repeats 3]
                                       [--asv-factor 1.1] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mlpbench.devices import describe_hardware
from mlpbench.regress import EXIT_OK, EXIT_REGRESSED, regress

ROOT = Path(__file__).resolve().parents[1]
#: a small grid: SGD training steps of two CPU networks at batch 32
BENCH = r"TrainStep.time_step\('cpu', (64|1000), 2, 32\)"
MACHINE = "regress-selftest"

_STEP_END = """        opt.step()
        return loss
"""
_STEP_SLOW = """        opt.step()
        _spent = time.perf_counter() - _t0
        while time.perf_counter() - _t0 < {factor} * _spent:
            pass
        return loss
"""
_STEP_START = """    def train_step():
"""
_STEP_START_SLOW = """    def train_step():
        _t0 = time.perf_counter()
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def make_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    git(dest, "config", "user.email", "selftest@mlpbench.invalid")
    git(dest, "config", "user.name", "mlpbench selftest")
    return dest


def commit(repo: Path, label: str, slowdown: float | None = None) -> str:
    """A commit whose code is HEAD's, optionally with the training step slowed down."""
    phases = repo / "mlpbench" / "phases.py"
    git(repo, "checkout", "--quiet", "-f", "main")
    git(repo, "checkout", "--quiet", "-B", f"sel-{label}")
    if slowdown is not None:
        text = phases.read_text()
        if _STEP_END not in text or _STEP_START not in text:
            raise SystemExit("selftest: the training step in mlpbench/phases.py changed shape; "
                             "update the patch in scripts/regress_selftest.py")
        text = text.replace(_STEP_START, _STEP_START_SLOW).replace(
            _STEP_END, _STEP_SLOW.format(factor=slowdown))
        if "import time\n" not in text:
            text = text.replace("import torch\n", "import time\n\nimport torch\n", 1)
        phases.write_text(text)
    (repo / "SELFTEST").write_text(label + "\n")
    git(repo, "add", "SELFTEST", "mlpbench")  # never the asv results written meanwhile
    git(repo, "commit", "--quiet", "-m", f"selftest {label}")
    return git(repo, "rev-parse", "HEAD")


def bench(repo: Path, sha: str) -> None:
    git(repo, "checkout", "--quiet", sha)
    env = {**os.environ, "ASV_PYTHONPATH": str(repo)}
    asv = shutil.which("asv") or str(Path(sys.executable).with_name("asv"))
    proc = subprocess.run([asv, "run", "--python=same", "--set-commit-hash", sha,
                           "--machine", MACHINE, "-b", BENCH], cwd=repo, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"selftest: asv run failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def verdict(repo: Path, base: str, other: str, factor: float) -> tuple[int, dict]:
    """Exit code of ``regress`` and the measured after/before ratio per benchmark."""
    lines: list[str] = []
    details: dict = {}
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        code = regress(base, other, factor=factor, machine=MACHINE,
                       config=str(repo / "asv.conf.json"), echo=lines.append, details=details)
    finally:
        os.chdir(cwd)
    if code not in (EXIT_OK, EXIT_REGRESSED):
        print("\n".join(lines)[-3000:], file=sys.stderr)
    comparison = details.get("comparison")
    return code, (comparison.ratios if comparison else {})


def _fmt(ratios: dict[str, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in ratios.values())


def run_selftest(aa: int, factors: list[float], repeats: int, asv_factor: float,
                 log=print) -> dict:
    asv = shutil.which("asv") or str(Path(sys.executable).with_name("asv"))
    subprocess.run([asv, "machine", "--yes", "--machine", MACHINE], check=True,
                   capture_output=True)
    with tempfile.TemporaryDirectory(prefix="mlpbench-selftest-") as tmp:
        repo = make_clone(Path(tmp) / "repo")
        base = commit(repo, "base")
        bench(repo, base)
        out: dict = {"bench": BENCH, "asv_factor": asv_factor, "aa": [], "slowdowns": {},
                     "ratios": {}}
        for i in range(aa):
            sha = commit(repo, f"aa-{i}")
            bench(repo, sha)
            code, ratios = verdict(repo, base, sha, asv_factor)
            out["aa"].append(code)
            out["ratios"][f"aa-{i}"] = ratios
            log(f"A/A {i + 1}/{aa}: exit {code}, ratios {_fmt(ratios)}")
        for f in factors:
            codes = []
            for r in range(repeats):
                sha = commit(repo, f"slow-{f}-{r}", slowdown=f)
                bench(repo, sha)
                code, ratios = verdict(repo, base, sha, asv_factor)
                codes.append(code)
                out["ratios"][f"slow-{f}-{r}"] = ratios
                log(f"slowdown x{f} run {r + 1}/{repeats}: exit {code}, ratios {_fmt(ratios)}")
            out["slowdowns"][str(f)] = codes
    fp = sum(c != EXIT_OK for c in out["aa"])
    out["false_positive_rate"] = fp / max(len(out["aa"]), 1)
    out["detection_rate"] = {f: sum(c == EXIT_REGRESSED for c in codes) / len(codes)
                             for f, codes in out["slowdowns"].items()}
    reliable = [float(f) for f, rate in out["detection_rate"].items() if rate == 1.0]
    out["smallest_reliable_slowdown"] = min(reliable) if reliable else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--aa", type=int, default=5)
    ap.add_argument("--factors", default="1.5,1.2,1.1")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--asv-factor", type=float, default=1.1)
    ap.add_argument("--json")
    args = ap.parse_args()
    res = run_selftest(args.aa, [float(f) for f in args.factors.split(",")], args.repeats,
                       args.asv_factor, log=lambda s: print(s, flush=True))
    hw = describe_hardware()
    res["machine"] = {k: hw[k] for k in ("cpu_model", "logical_cores", "torch_threads", "torch")}
    print(f"{hw['cpu_model']}, {hw['torch_threads']} threads; asv compare --factor "
          f"{args.asv_factor}; benchmarks {BENCH}")
    print(f"A/A false positives: {sum(c != 0 for c in res['aa'])}/{len(res['aa'])}")
    for f, rate in res["detection_rate"].items():
        print(f"slowdown x{f}: flagged in {rate:.0%} of {args.repeats} runs")
    print(f"smallest slowdown detected in every run: {res['smallest_reliable_slowdown']}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
