#!/usr/bin/env bash
# The whole suite, as CI runs it, in three steps:
# 1. the app and unit tests on two workers (pytest-xdist), one core each; the app tests, the longest,
#    go first, so the short unit tests fill the end evenly;
# 2. the timing tests (marked slow) alone, since they measure this machine's speed;
# 3. the browser tests and the Ray tests side by side: each mostly waits on its servers, and together
#    they keep the two cores busier than one after the other (docs/testing.md). The Ray tests'
#    report is printed after the browser tests' own.
# Arguments go to every pytest run.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
keep() { [ "$1" = 0 ] || [ "$1" = 5 ] || status=$1; }  # 5: no test selected in that step
.venv/bin/python -m pytest tests/app tests/unit -m "not slow" -n 2 "$@"; keep $?
.venv/bin/python -m pytest tests/unit tests/app -m slow "$@"; keep $?
mkdir -p test-output
.venv/bin/python -m pytest tests/ray "$@" > test-output/ray_tests.log 2>&1 &
ray=$!
.venv/bin/python -m pytest tests/browser "$@"; keep $?
wait "$ray"; ray_rc=$?
echo "======================== the Ray tests (run beside the browser tests) ========================"
cat test-output/ray_tests.log
keep "$ray_rc"
exit "$status"
