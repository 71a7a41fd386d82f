"""Re-derive the Newton study's extrapolation (``newton_extrapolation.csv``) from the committed
cost table and the measuring machine's recorded matmul peak; nothing is measured.

    .venv/bin/python scripts/rederive_newton.py [results/runs/intel-xeon-2c]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mlpbench.analysis.newton import analyse
from mlpbench.analysis.newton_extrap import peak_from_machine
from mlpbench.errors import UsageError
from mlpbench.results import read_table, write_table


def rederive(machine_dir: Path) -> Path:
    """Write ``newton/newton_extrapolation.csv`` of ``machine_dir`` from ``newton/newton_cost.csv``
    and the peak in ``modes/machine.json`` (same machine, the cost study's thread count)."""
    newton = machine_dir / "newton"
    frame = read_table(newton / "newton_cost.csv")
    meta = json.loads((newton / "newton_cost.json").read_text())
    machine = json.loads((machine_dir / "modes" / "machine.json").read_text())
    mid = meta["hardware"]["machine_id"]
    if machine["hardware"]["machine_id"] != mid:
        raise UsageError(f"modes/machine.json is of machine {machine['hardware']['machine_id']}, "
                         f"the cost study of {mid}")
    threads = int(frame["threads"].iloc[0])
    peak = peak_from_machine(machine, threads, f"{machine_dir.name}/modes/machine.json")
    table = analyse(frame.assign(machine_id=mid), peak)["extrapolation_table"]
    return write_table(newton, "newton_extrapolation", table)


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else "results/runs/intel-xeon-2c")
    try:
        print(rederive(root))
    except (UsageError, OSError, KeyError) as err:
        print(f"rederive_newton: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
