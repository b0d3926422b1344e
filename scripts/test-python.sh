#!/bin/sh
# Python client tests (clients/python/tests) against live pipelines, with Debian's python3 packages.
# Skips (exit 0) when /usr/bin/python3 lacks pyzmq, msgpack, numpy, OpenCV or pytest; fails when
# pytest collects no tests (its exit code 5), so a broken test tree cannot pass silently.
set -u
cd "$(dirname "$0")/.." || exit 1
PYTHON=/usr/bin/python3

if ! "$PYTHON" -c 'import zmq, msgpack, numpy, cv2, pytest' 2>/dev/null; then
  echo "SKIPPED: Python client tests need $PYTHON with pyzmq, msgpack, numpy, OpenCV and pytest (apt-get install python3-zmq python3-msgpack python3-numpy python3-opencv python3-pytest)"
  exit 0
fi

PYTHONPATH="$PWD/clients/python${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m pytest -q -p no:cacheprovider clients/python/tests "$@"
status=$?
if [ "$status" -eq 5 ]; then
  echo "FAILED: pytest found no tests in clients/python/tests" >&2
  exit 1
fi
exit "$status"
