"""The results store: run folders written by mlpbench (locked, atomic, resumable, validated
on read) and asv's results, as tidy frames."""

from mlpbench.results.asv import load_asv
from mlpbench.results.gates import load_gates
from mlpbench.results.schema import (
    KINDS,
    SCHEMAS,
    load_hardware,
    load_meta,
    load_runs,
    read_meta,
    read_table,
)
from mlpbench.results.store import (
    RunFolder,
    atomic_write,
    dumps,
    prepare_out,
    strict,
    write_meta,
    write_table,
)

__all__ = ["KINDS", "SCHEMAS", "RunFolder", "atomic_write", "dumps", "load_asv", "load_gates", "load_hardware",
           "load_meta", "load_runs", "prepare_out", "read_meta", "read_table", "strict",
           "write_meta", "write_table"]
