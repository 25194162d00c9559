#!/usr/bin/env bash
# make test: two pytest sessions side by side. One runs the deployed tier, then local test
# files from the last; the other runs local test files from the first; each file goes to the
# session that reaches it first (tests/file_queue.py), so both end about together. Both spend
# most of their time waiting on orchestrators, so on two cores this about halves the wall
# time; each session tells its own processes by tests.conftest.SESSION_MARK, and the deployed
# tier's stack has ports of its own (stack/settings.py). The second session's report is
# printed after the first one's; the status is the worse of the two.
#   scripts/test_tiers.sh PYTHON [pytest arguments...]
set -uo pipefail
python=$1
shift
log=.state/tests/deployed-tier.log
mkdir -p "$(dirname "$log")"
queue=$(mktemp -d "$PWD/.state/tests/queue.XXXXXX")  # the claims of test files
export PARITY_TEST_QUEUE=$queue

set -m  # its own process group, so an interrupt can be passed on for it to stop the stack
PARITY_TEST_QUEUE_END=last "$python" -m pytest "$@" > "$log" 2>&1 &
deployed=$!
set +m
trap 'kill -INT -- -$deployed 2> /dev/null; wait $deployed; rm -rf "$queue"; exit 130' INT TERM
echo "test: the deployed tier and a share of the local tests run beside this session; its report follows ($log)"

"$python" -m pytest -m "not deployed" "$@"
rest=$?
wait $deployed
tier=$?
rm -rf "$queue"
echo "---- the deployed tier and the local tests it took, run beside the tests above ----"
cat "$log"

# 5 is pytest's "no test selected": arguments that pick tests of one tier only.
if (( rest == 5 && tier != 5 )); then rest=0; fi
if (( tier == 5 && rest != 5 )); then tier=0; fi
exit $(( rest > tier ? rest : tier ))
