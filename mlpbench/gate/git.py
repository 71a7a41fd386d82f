"""The regression gate's git side: resolve BASE/HEAD (the merge-base by default) and export a
commit's tree without touching the caller's checkout. Unknown commits, no merge-base and
nothing to compare are bad input (exit 2)."""

from __future__ import annotations

import os
import subprocess

from mlpbench.errors import UsageError


def _git(repo: str, *args: str) -> str:
    proc = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        raise LookupError(proc.stderr.strip() or f"git {' '.join(args)} failed")
    return proc.stdout.strip()


def resolve_commits(repo: str, base: str, head: str, merge_base: bool = True) -> tuple[str, str]:
    """Full hashes of BASE (or its merge-base with HEAD) and HEAD; UsageError if unusable."""
    shas = []
    for what, ref in (("BASE", base), ("HEAD", head)):
        if not ref or not ref.strip():
            raise UsageError(f"{what} commit is empty")
        try:
            shas.append(_git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
        except LookupError:
            raise UsageError(f"unknown {what} commit {ref!r}") from None
    b, h = shas
    if merge_base:
        try:
            b = _git(repo, "merge-base", b, h)
        except LookupError:
            raise UsageError(f"{base!r} and {head!r} have no merge-base") from None
    if b == h and shas[0] != h:
        raise UsageError(f"HEAD {head!r} is an ancestor of BASE {base!r}: their merge-base is "
                         "HEAD itself, nothing to compare (swap them, or --no-merge-base)")
    if b == h:
        raise UsageError(f"BASE and HEAD are the same commit ({h[:12]}): nothing to compare")
    return b, h


def export_commit(repo: str, sha: str, dest: str) -> str:
    """The committed tree of ``sha`` in ``dest`` (``git archive``; no checkout involved)."""
    os.makedirs(dest, exist_ok=True)
    archive = subprocess.Popen(["git", "-C", repo, "archive", sha], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
    if archive.wait():
        raise LookupError(f"git archive {sha} failed")
    return dest
