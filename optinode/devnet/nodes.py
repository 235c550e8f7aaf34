"""The devnet's nodes: real ``optinode sequencer`` and ``optinode verifier run`` processes, owned by trio.

    node = Node("sequencer", ["sequencer", "--config", …], log_path, env={"OPTINODE_PROPOSER_KEY": key})
    await node.start(nursery, ready=lambda: api_answers())     # started in its own cancel scope
    await node.stop()                                           # SIGTERM, then SIGKILL after STOP_TIMEOUT

Each node is one child process in its own session, so a Ctrl-C at the terminal reaches only the
devnet, which then stops the nodes in order (they exit 0 on SIGTERM, docs/sequencer.md); cancelling
the devnet's nursery does the same through `trio.run_process`'s ``deliver_cancel``. Its output goes to
``log_path`` (the operator's ``tail -f``). A node that exits on its own is a failure the waits report
with the tail of its log (`NodeFailed`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import trio

import optinode

STOP_TIMEOUT = 30.0  # seconds a node gets to exit after SIGTERM (it closes its store) before SIGKILL
READY_TIMEOUT = 90.0  # seconds from spawn to its first answer (imports and the store replay)
_PACKAGE_ROOT = Path(optinode.__file__).resolve().parents[1]


class NodeFailed(RuntimeError):
    """A devnet node exited when it should be running, or never became ready."""


def command(*args: str) -> list[str]:
    """``optinode ARGS…`` with this interpreter (the same installation as the devnet itself)."""
    return [sys.executable, "-m", "optinode.cli.main", *args]


async def _terminate(process: trio.Process) -> None:
    """deliver_cancel: ask for a clean stop, and only kill a node that does not stop in time."""
    process.send_signal(signal.SIGTERM)
    with trio.move_on_after(STOP_TIMEOUT):
        await process.wait()
        return
    process.kill()


class Node:
    """One ``optinode`` child process; started and stopped as often as a scenario needs (same ports,
    same data directory)."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.args = list(args)
        self.log_path = log_path
        self.env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
        self.process: trio.Process | None = None
        self._scope: trio.CancelScope | None = None
        self._done: trio.Event | None = None

    @property
    def command_line(self) -> str:
        """What an operator would type (keys come from the environment, never the command line)."""
        return "optinode " + " ".join(self.args)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, nursery: trio.Nursery, ready: Callable[[], Awaitable[bool]], *, timeout: float = READY_TIMEOUT) -> None:
        """Spawn the process and return once ``ready()`` is true (polled); NodeFailed if it exits first."""
        if self.running:
            raise RuntimeError(f"the {self.name} is already running")
        self.process = await nursery.start(self._run)
        with trio.move_on_after(timeout):
            while True:
                self.check()
                if await ready():
                    return
                await trio.sleep(0.2)
        raise NodeFailed(f"the {self.name} did not become ready within {timeout:.0f} s:\n{self.log_tail()}")

    async def _run(self, *, task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED) -> None:
        self._scope, self._done = trio.CancelScope(), trio.Event()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._scope, open(self.log_path, "ab") as log:
                await trio.run_process(command(*self.args), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                       start_new_session=True, check=False, deliver_cancel=_terminate, task_status=task_status)
        finally:
            self._done.set()

    async def stop(self) -> int | None:
        """Stop it (SIGTERM, then SIGKILL after STOP_TIMEOUT) and wait; its exit status (None: never started)."""
        if self._scope is None or self._done is None:
            return None
        with trio.CancelScope(shield=True):
            self._scope.cancel()
            await self._done.wait()
        assert self.process is not None
        return self.process.returncode

    def check(self) -> None:
        """NodeFailed if the process is gone (with the tail of its log)."""
        if self.process is not None and self.process.returncode is not None:
            raise NodeFailed(f"the {self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, n_bytes: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n_bytes:].decode("utf-8", "replace")
        except OSError:
            return ""


__all__ = ["Node", "NodeFailed", "READY_TIMEOUT", "STOP_TIMEOUT", "command"]
