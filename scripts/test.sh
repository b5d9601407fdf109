#!/usr/bin/env bash
# The whole suite, as CI runs it. The unit and app tests run on two workers (pytest-xdist), one core
# each; then the timing tests and the tests that start servers (browser, Ray) run alone on the
# machine, since they need its two cores to themselves. Arguments go to both pytest runs.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
.venv/bin/python -m pytest tests/unit tests/app -m "not slow" -n 2 "$@" || status=$?
[ "$status" = 5 ] && status=0  # no test selected in this half
.venv/bin/python -m pytest -m "slow or browser or ray" "$@" || { rc=$?; [ "$rc" = 5 ] || status=$rc; }
exit "$status"
