"""Start the producer (`pipeline run ...`) from the training script, and stop it with it."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
from typing import IO, Mapping, Sequence, Union

Command = Union[str, Sequence[str]]


def find_pipeline() -> str:
    """The `pipeline` executable: $PIPELINE_BIN if set, else `pipeline` on PATH. Build it with
    `make build` (bin/pipeline) or `go build -o bin/pipeline ./cmd/pipeline`."""
    explicit = os.environ.get("PIPELINE_BIN")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise FileNotFoundError(f"PIPELINE_BIN={explicit}: no executable there (make build writes bin/pipeline)")
        return explicit
    found = shutil.which("pipeline")
    if found is None:
        raise FileNotFoundError("no `pipeline` on PATH and PIPELINE_BIN is not set: build it with `make build` "
                                "(bin/pipeline) and put it on PATH or set PIPELINE_BIN")
    return found


def pipeline_run(config: str, *sets: str, summary_json: str | None = None, binary: str | None = None) -> list[str]:
    """The command line `pipeline run CONFIG --set KEY=VALUE ... --progress off`, for Producer.

        Producer(pipeline_run("moco.yaml", "sink.path=unix:///tmp/p.sock"))
    """
    cmd = [binary or find_pipeline(), "run", config]
    for s in sets:
        cmd += ["--set", s]
    if summary_json:
        cmd += ["--summary-json", summary_json]
    return cmd + ["--progress", "off"]


class Producer:
    """Runs command (a list, or a string for the shell) as a subprocess for the duration of a
    with-block, with env added to the environment. On a clean exit it waits up to
    exit_timeout seconds for the producer to finish (it ends once every batch is delivered),
    then checks its exit status; on an error it terminates it.

        with Producer(["pipeline", "run", "moco.yaml"]):
            for batch in PipelineDataset("unix:///tmp/p.sock"):
                ...

    stderr, if given, receives the producer's standard error (its progress and summary).
    """

    def __init__(self, command: Command, env: Mapping[str, str] | None = None, exit_timeout: float = 60.0,
                 stderr: IO | None = None):
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.exit_timeout = exit_timeout
        self.stderr = stderr
        self.proc: subprocess.Popen | None = None
        self.stopped = False  # stopped on purpose: its exit status means nothing

    def __enter__(self) -> "Producer":
        shell = isinstance(self.command, str)
        # Its own process group, so that stopping it stops what a shell command started.
        self.proc = subprocess.Popen(self.command, shell=shell, env=self.env, start_new_session=True,
                                     stderr=self.stderr)
        return self

    def running(self) -> bool:
        """Whether the producer process is still alive."""
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the producer to exit and returns its exit status."""
        return self.proc.wait(timeout=timeout)

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
