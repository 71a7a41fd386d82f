"""One commit's benchmark worker, seen from the gate: start it, ask it, bound its time.

Replies come on a pipe of their own (the worker's file descriptor, see
:mod:`mlpbench.gate.worker`), so whatever the code under test prints cannot be taken for a
reply; a reply of another protocol or version is a :class:`ProtocolError` (the gate's own
fault: exit 4, never 1).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlpbench.gate.worker import PROTOCOL, VERSION

#: the tree holding the gate's own ``mlpbench`` (BASE's, in CI): the worker module comes from it
GATE_ROOT = str(Path(__file__).resolve().parents[2])


class ProtocolError(RuntimeError):
    """The worker answered something that is not a reply of this protocol version."""


@dataclass
class Side:
    """One commit's worker process; ``error`` says why it stopped answering."""

    name: str
    root: str
    threads: int = 1
    clock: str = "cpu"
    proc: subprocess.Popen | None = None
    error: str = ""
    _fd: int = -1
    _buf: bytes = b""
    _log: object = field(default=None, repr=False)

    def start(self, timeout: float) -> bool:
        """Launch the worker and wait (at most ``timeout`` s) for it to be ready."""
        self.close()
        self.error, self._buf = "", b""
        env = dict(os.environ, MLPBENCH_THREADS=str(self.threads), PYTHONHASHSEED="0",
                   OMP_NUM_THREADS=str(self.threads), MLPBENCH_FULL="0", PYTHONPATH=GATE_ROOT)
        self._log = tempfile.TemporaryFile(mode="w+")
        read, write = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "mlpbench.gate.worker", self.root, self.clock, str(write)],
            stdin=subprocess.PIPE, stdout=self._log, stderr=self._log, text=True, env=env,
            cwd=os.path.dirname(os.path.abspath(self.root)), pass_fds=(write,))
        os.close(write)
        self._fd = read
        return self._read(timeout, "start") is not None

    def ask(self, op: str, timeout: float, **kw) -> dict | None:
        """One request; its reply, or None when the worker died or ran past ``timeout``."""
        if self.error or self.proc is None:
            return None
        try:
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reason is read below
        return self._read(timeout, f"{op} {kw.get('id', '')}".strip())

    def _read(self, timeout: float, what: str) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            ready = select.select([self._fd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self.kill()
                self.error = f"{what}: exceeded its time limit of {timeout:.0f} s (killed)"
                return None
            chunk = os.read(self._fd, 65536)
            if not chunk:
                self.kill()
                self.error = f"{what}: worker died: {self._log_tail()}"[:300]
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            reply = json.loads(line)
        except ValueError:
            raise ProtocolError(f"{self.name} worker sent a non-JSON reply: {line[:80]!r}") \
                from None
        if not isinstance(reply, dict) or reply.get("protocol") != PROTOCOL or \
                reply.get("v") != VERSION:
            raise ProtocolError(f"{self.name} worker speaks {str(reply)[:80]}, not "
                                f"{PROTOCOL} v{VERSION}")
        return reply

    def _log_tail(self) -> str:
        if self._log is None:
            return "no output"
        self._log.seek(0)
        tail = self._log.read().strip().splitlines()
        return tail[-1] if tail else "no output"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def close(self) -> None:
        """Ask the worker to quit (kill it if it does not), release the pipe."""
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=5)  # an idle worker quits at once
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.kill()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.proc = None
