"""What produced a results file: the format version, mlpbench's version and commit.

Every ``<kind>.json`` a study writes carries :func:`provenance` (as pyperf stores its
``_JSON_VERSION`` and asv its ``api_version``). A reader :func:`migrate` s known older formats
and refuses unknown ones, so a table is never read through guesses about what wrote it.

Format history:

* **1** — files written before the format was recorded (no ``format_version`` key): tables
  may lack later point axes (``activation``, ``mode``, ``threads``), which read as their
  defaults (:data:`mlpbench.point.POINT_DEFAULTS`); no commit is known.
* **2** — ``format_version``, ``mlpbench`` (version), ``commit``, ``dirty`` in every metadata
  file; ``started``, ``finished`` and ``wall_s`` of the study; every point axis a column.
"""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path
from typing import Any

from mlpbench.errors import UsageError

FORMAT_VERSION = 2
#: versions a reader understands (older ones are migrated on read)
KNOWN_FORMATS = (1, 2)
#: the metadata keys that name what wrote a file
PROVENANCE_KEYS = ("format_version", "mlpbench", "commit", "dirty")


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the source checkout mlpbench runs from; ``(None, None)`` for an
    installed copy or without git."""
    src = Path(__file__).resolve().parents[2]
    if not (src / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10, check=True)
        status = subprocess.run(["git", "-C", str(src), "status", "--porcelain",
                                 "--untracked-files=no", "--", "mlpbench"],
                                capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit.stdout.strip() or None, bool(status.stdout.strip())


def provenance() -> dict[str, Any]:
    """The provenance keys of a file written now: format, mlpbench version, commit, and
    whether the library's sources differ from that commit (``dirty``)."""
    from mlpbench import __version__

    commit, dirty = _git_state()
    return {"format_version": FORMAT_VERSION, "mlpbench": __version__, "commit": commit,
            "dirty": dirty}


def format_of(meta: dict[str, Any], path: Path | str) -> int:
    """The format version a metadata object declares (1 when it declares none); an unknown or
    malformed one is a :class:`UsageError` naming the file."""
    version = meta.get("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise UsageError(f"corrupt metadata {path}: format_version {version!r} is not an "
                         "integer")
    if version not in KNOWN_FORMATS:
        newer = version > FORMAT_VERSION
        raise UsageError(f"{path} is results format {version}; this mlpbench reads formats "
                         f"{KNOWN_FORMATS[0]}–{FORMAT_VERSION}"
                         + (" (written by a newer mlpbench: upgrade to read it)" if newer else ""))
    return version


def migrate(meta: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """``meta`` in the current format: known older formats are upgraded (recording
    ``migrated_from``), unknown ones refused."""
    version = format_of(meta, path)
    if version == FORMAT_VERSION:
        return meta
    # 1 -> 2: nothing is known of what wrote it; the tables' missing point axes are filled
    # with their defaults by the table reader (mlpbench.point.with_defaults)
    return {**{k: None for k in PROVENANCE_KEYS}, **meta, "format_version": FORMAT_VERSION,
            "migrated_from": version}


def same_code(stored: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Why results written with ``stored`` provenance are not from the code running now
    (``None`` when they are): another format, mlpbench version or commit."""
    if stored.get("migrated_from") is not None:
        return f"written in results format {stored['migrated_from']} (now {FORMAT_VERSION})"
    for key in ("format_version", "mlpbench", "commit"):
        if stored.get(key) != now.get(key):
            return f"written by {key} {stored.get(key)!r}, this is {now.get(key)!r}"
    return None
