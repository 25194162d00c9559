#!/usr/bin/env bash
# make test: the deployed tier runs beside the rest, as its own pytest session, together with
# the local test files tests/conftest.py lists in BESIDE_DEPLOYED so that both sessions take
# about as long. Both spend most of their time waiting on orchestrators, so on two cores this
# roughly halves the wall time; each session tells its own processes by
# tests.conftest.SESSION_MARK, and the deployed tier's stack has ports of its own
# (stack/settings.py). Its report is printed after the other one's; the status is the worse.
#   scripts/test_tiers.sh PYTHON [pytest arguments...]
set -uo pipefail
python=$1
shift
log=.state/tests/deployed-tier.log
mkdir -p "$(dirname "$log")"

set -m  # its own process group, so an interrupt can be passed on for it to stop the stack
"$python" -m pytest -m "deployed or beside_deployed" "$@" > "$log" 2>&1 &
deployed=$!
set +m
trap 'kill -INT -- -$deployed 2> /dev/null; wait $deployed; exit 130' INT TERM
echo "test: the deployed tier runs beside this one; its report follows ($log)"

"$python" -m pytest -m "not deployed and not beside_deployed" "$@"
rest=$?
wait $deployed
tier=$?
echo "---- the deployed tier, run beside the tests above ----"
cat "$log"

# 5 is pytest's "no test selected": arguments that pick tests of one tier only.
if (( rest == 5 && tier != 5 )); then rest=0; fi
if (( tier == 5 && rest != 5 )); then tier=0; fi
exit $(( rest > tier ? rest : tier ))
