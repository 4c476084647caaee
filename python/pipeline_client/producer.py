"""Start the producer (`pipeline run ...`) from the training script, and stop it with it."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess


class Producer:
    """Runs command (a list, or a string for the shell) as a subprocess for the duration of a
    with-block, with env added to the environment. On a clean exit it waits up to
    exit_timeout seconds for the producer to finish (it ends once every batch is delivered),
    then checks its exit status; on an error it terminates it.

        with Producer(["pipeline", "run", "moco.yaml"]):
            for batch in PipelineDataset("unix:///tmp/p.sock"):
                ...
    """

    def __init__(self, command, env: dict[str, str] | None = None, exit_timeout: float = 60.0):
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.exit_timeout = exit_timeout
        self.proc: subprocess.Popen | None = None
        self.stopped = False  # stopped on purpose: its exit status means nothing

    def __enter__(self) -> "Producer":
        shell = isinstance(self.command, str)
        # Its own process group, so that stopping it stops what a shell command started.
        self.proc = subprocess.Popen(self.command, shell=shell, env=self.env, start_new_session=True)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None and not self.stopped:
            try:
                code = self.proc.wait(timeout=self.exit_timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                raise RuntimeError(f"producer {self._name()} still running {self.exit_timeout}s after the stream ended")
            if code != 0:
                raise RuntimeError(f"producer {self._name()} exited with status {code}")
        else:
            self.stop()

    def stop(self, grace: float = 5.0) -> None:
        """Terminates the producer (SIGTERM to its process group, SIGKILL after grace)."""
        self.stopped = True
        if not self.running():
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def _name(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)
