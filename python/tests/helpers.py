"""Shared by the tests: optional imports with a clear skip reason, and batchtest's pixel formula."""

from __future__ import annotations

import importlib
import os
import sys
import unittest

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(REPO, "python"))


def require(*modules):
    """Skips the test class unless every module imports; under CI=true a missing module is an
    error instead, so that CI cannot pass by skipping (scripts/deps.sh installs them all)."""
    missing = []
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError:
            missing.append(m)
    if missing and os.environ.get("CI") == "true":
        raise ImportError(f"CI=true and {', '.join(missing)} not installed for {sys.executable}: "
                          "run scripts/deps.sh, which makes .venv/")
    if missing:
        return unittest.skip(f"needs {', '.join(missing)} (not installed for {sys.executable}); "
                             "run on a machine that has them, e.g. python/tests/run_gpu_check.sh")
    return lambda cls: cls


def require_producer(command: str):
    """Skips the test class unless PIPELINE_PRODUCER names the Go producer (make test sets it);
    under CI=true its absence is an error, as for a missing module."""
    if not command and os.environ.get("CI") == "true":
        raise RuntimeError("CI=true and PIPELINE_PRODUCER is not set: run the tests with make test")
    return unittest.skipUnless(command, "set PIPELINE_PRODUCER to a command serving batchtest "
                                        "batches at $BATCHTEST_SERVE")


def require_pipeline(path: str):
    """Skips the test class unless path is the `pipeline` executable (make test builds
    bin/pipeline); under CI=true its absence is an error, as for a missing module."""
    if os.access(path, os.X_OK):
        return lambda cls: cls
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true and no pipeline executable at {path}: run the tests with make test")
    return unittest.skip(f"no pipeline executable at {path}: make build, or set PIPELINE_BIN")


def expected_view(index: int, view: int, nbytes: int):
    """Byte j of view column `view` of sample `index`, as sink/arrowsocket/batchtest writes it."""
    import numpy as np

    return ((7 * index + 13 * view + np.arange(nbytes, dtype=np.int64)) % 251).astype(np.uint8)
