"""The results store: run folders written by mlpbench (locked, atomic, resumable, validated
on read) and asv's results, as tidy frames."""

from mlpbench.results.asv import load_asv
from mlpbench.results.gates import load_gates
from mlpbench.results.loading import (
    CHECKED_METADATA,
    load_hardware,
    load_meta,
    load_runs,
    separate_unlike,
)
from mlpbench.results.provenance import FORMAT_VERSION, provenance
from mlpbench.results.schema import KINDS, SCHEMAS, read_meta, read_table
from mlpbench.results.store import (
    STUDIES,
    RunFolder,
    Study,
    atomic_write,
    dumps,
    prepare_out,
    strict,
    write_meta,
    write_table,
)

__all__ = ["CHECKED_METADATA", "FORMAT_VERSION", "KINDS", "SCHEMAS", "STUDIES", "RunFolder",
           "Study", "atomic_write", "dumps", "load_asv", "load_gates", "load_hardware",
           "load_meta", "load_runs", "prepare_out", "provenance", "read_meta", "read_table",
           "separate_unlike", "strict", "write_meta", "write_table"]
