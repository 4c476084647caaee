#!/usr/bin/env bash
# The Python client's checks on a machine with pyarrow, torch and a GPU: the unit tests, the
# end-to-end tests against the Go producer, then gpu_check.py's throughput and MoCo figures.
#
# usage: python/tests/run_gpu_check.sh 'PRODUCER COMMAND'
#   The command must serve sink/arrowsocket/batchtest batches at $BATCHTEST_SERVE (it is run by
#   the shell, with BATCHTEST_* in its environment). The arrowsocket test binary does, built
#   where Go is and carried over (bin/ is git-ignored):
#     CGO_ENABLED=0 go test -c -o bin/arrowsocket.test ./sink/arrowsocket
#     python/tests/run_gpu_check.sh "bin/arrowsocket.test -test.run '^TestServeSynthetic\$' -test.v"
# A log goes to $OUT/gpu_check.log when OUT is set. About 2 minutes on an H100.
set -uo pipefail
if [ $# -ne 1 ]; then
  sed -n '2,11p' "$0"
  exit 2
fi
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/../.." || exit 2
# The tests start it from their own folder: run it from the repository root, where it is given.
export PIPELINE_PRODUCER="cd $(printf %q "$PWD") && $1"
log="${OUT:-/tmp}/gpu_check.log"
{
  # Interrupted (bench/gpu/run.sh's timeout sends SIGINT): stop here, not at the next step.
  trap 'echo "run_gpu_check: interrupted"; exit 130' INT
  python3 -c 'import pyarrow, torch; print("pyarrow", pyarrow.__version__, "torch", torch.__version__)' || exit 2
  status=0
  if python3 -c 'import pytest' 2>/dev/null; then
    python3 -m pytest -q -rs python/tests || status=$?
  else # the tests are unittest cases: pytest only reports them more tersely
    (cd python/tests && python3 -m unittest -v) || status=$?
  fi
  python3 python/tests/gpu_check.py || status=$?
  echo "run_gpu_check: exit status $status"
  exit $status
} 2>&1 | tee "$log"
