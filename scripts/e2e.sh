#!/usr/bin/env bash
# End-to-end test of reqplane as separate processes on one machine: "reqplane etcd", "reqplane
# nats", one worker per request plane and one serving all three, driven by "reqplane call".
# Everything listens on 127.0.0.1; every wait is bounded. Exit status 0 = every check passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

work=$(mktemp -d)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap "exit 1" INT TERM PIPE # so that EXIT's cleanup runs on these too

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
die() { echo "FAIL - $*"; echo "--- logs"; tail -n 20 "$work"/*.log || true; exit 1; }

go build -o "$work/reqplane" ./cmd/reqplane
rp() { "$work/reqplane" "$@"; }

export ETCD_LEASE_TTL=3
export DYN_HTTP_RPC_HOST=127.0.0.1 DYN_HTTP_RPC_PORT=0
export DYN_TCP_RPC_HOST=127.0.0.1 DYN_TCP_RPC_PORT=0
export DYN_TCP_RESPONSE_STREAM_HOST=127.0.0.1 DYN_SYSTEM_HOST=127.0.0.1
export DYN_LOG=info
EP=dynamo/backend/generate

# wait_for SECONDS COMMAND...: retry COMMAND every 0.1 s until it succeeds or time runs out.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
# wait_alive SECONDS PID COMMAND...: wait_for, giving up at once when process PID has exited.
wait_alive() {
	local deadline=$((SECONDS + $1)) pid=$2; shift 2
	until "$@" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || return 1
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
count_instances() { rp ls "$EP" 2>/dev/null | tail -n +2 | grep -c . || true; }
has_instances() { [ "$(count_instances)" -eq "$1" ]; }

# start_services starts etcd and NATS on a random base port below the ephemeral range
# (32768+), trying other ports when one is taken; it sets ETCD_ENDPOINTS and NATS_SERVER.
start_services() {
	local attempt etcd_pid nats_pid
	for attempt in 1 2 3 4 5; do
		base=$((10000 + RANDOM % 20000))
		export ETCD_ENDPOINTS="http://127.0.0.1:$base"
		export NATS_SERVER="nats://127.0.0.1:$((base + 2))"
		rm -rf "$work/etcd" "$work/nats"
		"$work/reqplane" etcd --data-dir "$work/etcd" --listen-client-urls "$ETCD_ENDPOINTS" \
			--listen-peer-urls "http://127.0.0.1:$((base + 1))" >"$work/etcd.log" 2>&1 &
		etcd_pid=$!
		if wait_alive 20 "$etcd_pid" rp ls; then
			"$work/reqplane" nats --addr "127.0.0.1:$((base + 2))" --store-dir "$work/nats" >"$work/nats.log" 2>&1 &
			nats_pid=$!
			if wait_alive 20 "$nats_pid" grep -q "NATS is serving clients at $NATS_SERVER" "$work/nats.log"; then
				pids+=("$etcd_pid" "$nats_pid")
				return 0
			fi
			kill -9 "$nats_pid" 2>/dev/null || true
			wait "$nats_pid" 2>/dev/null || true
		fi
		kill -9 "$etcd_pid" 2>/dev/null || true
		wait "$etcd_pid" 2>/dev/null || true
		echo "     ports from $base are taken (attempt $attempt): $(tail -n 1 "$work/etcd.log" "$work/nats.log" 2>/dev/null | tr '\n' ' ')"
	done
	return 1
}
start_services || die "etcd and NATS did not come up"

declare -A worker_pid
start_worker() { # name planes
	DYN_REQUEST_PLANE=$2 "$work/reqplane" worker --drain-timeout 20s >"$work/worker-$1.log" 2>&1 &
	worker_pid[$1]=$!
	pids+=($!)
}
start_worker http http
start_worker tcp tcp
start_worker nats nats
start_worker all http,tcp,nats
wait_for 30 has_instances 4 || die "the four workers did not register"
ok "four workers registered (http, tcp, nats, all planes)"
rp ls "$EP"

instance_of() { # worker name -> instance id, read from its log
	sed -n 's/.*msg="serving endpoint".*instance=\([0-9a-f]*\).*/\1/p' "$work/worker-$1.log" | tail -n 1
}
want2='{"data":{"text":"hello","index":0}}
{"data":{"text":"world","index":1}}'

# 1. Every router mode, through a client that prefers each plane in turn.
for planes in http,tcp,nats tcp,http,nats nats,tcp,http; do
	for mode in round_robin random least_loaded power_of_two; do
		if out=$(DYN_REQUEST_PLANE=$planes timeout 30 "$work/reqplane" call "$EP" -d '{"text":"hello world"}' \
			--router "$mode" --count 8 -v 2>"$work/call.err"); then
			if [ "$out" == "$(for _ in 1 2 3 4 5 6 7 8; do echo "$want2"; done)" ]; then
				served=$(grep -c '^# instance' "$work/call.err")
				distinct=$(grep '^# instance' "$work/call.err" | sort -u -k3,3 | wc -l)
				if [ "$mode" = round_robin ] && [ "$distinct" -ne 4 ]; then
					fail "$mode ($planes): round robin reached $distinct instances, want 4"
				else
					ok "$mode ($planes): $served requests, $distinct instances"
				fi
			else
				fail "$mode ($planes): wrong items: $out"
			fi
		else
			fail "$mode ($planes): call failed: $(cat "$work/call.err")"
		fi
	done
done
for w in http tcp nats all; do
	id=$(instance_of "$w")
	if out=$(timeout 30 "$work/reqplane" call "$EP" -d '{"text":"hello world"}' --router direct --instance "$id" -v 2>"$work/call.err") &&
		[ "$out" == "$want2" ] && grep -q "instance $id" "$work/call.err"; then
		ok "direct to the $w worker ($id)"
	else
		fail "direct to the $w worker ($id): $out $(cat "$work/call.err")"
	fi
done

# 2. An error prologue and the no-instance error.
if err=$(timeout 30 "$work/reqplane" call "$EP" -d '{"prompt":1}' 2>&1 >/dev/null); then
	fail "a body without text succeeded"
elif grep -q 'Generate Error: request body must be a JSON object with a "text" field' <<<"$err"; then
	ok "generate error reported: $err"
else
	fail "unexpected error text: $err"
fi
if err=$(timeout 10 "$work/reqplane" call dynamo/backend/nope -d '{"text":"x"}' 2>&1 >/dev/null); then
	fail "a call to an endpoint without instances succeeded"
elif grep -q 'no instances found for endpoint dynamo/backend/nope' <<<"$err"; then
	ok "no instances: $err"
else
	fail "unexpected no-instance error: $err"
fi

# 3. SIGKILL a worker mid-stream: the client fails promptly, later calls avoid the dead instance.
tcp_id=$(instance_of tcp)
DYN_REQUEST_PLANE=tcp timeout 30 "$work/reqplane" call "$EP" --instance "$tcp_id" \
	-d '{"text":"a b c d e f g h i j k l m n o p q r s t","delay_ms":200}' >"$work/killed.out" 2>"$work/killed.err" &
call_pid=$!
wait_for 10 grep -q . "$work/killed.out" || fail "the long stream did not start"
killed_at=$SECONDS
kill -9 "${worker_pid[tcp]}"
if wait "$call_pid"; then
	fail "the stream from a killed worker ended cleanly"
else
	took=$((SECONDS - killed_at))
	if [ "$took" -le 5 ] && grep -q 'Stream ended before generation completed' "$work/killed.err"; then
		ok "killed worker: client failed in ${took}s: $(tail -n 1 "$work/killed.err")"
	else
		fail "killed worker: client took ${took}s: $(cat "$work/killed.err")"
	fi
fi
if out=$(DYN_REQUEST_PLANE=tcp,http,nats timeout 30 "$work/reqplane" call "$EP" -d '{"text":"hello world"}' --count 12 -v 2>"$work/call.err"); then
	if grep -q "instance $tcp_id" "$work/call.err"; then
		fail "a call was served by the killed instance"
	else
		ok "12 calls after the kill avoided the dead instance"
	fi
else
	fail "calls after the kill failed: $(cat "$work/call.err")"
fi
wait_for 15 has_instances 3 && ok "the killed worker's registration expired with its lease" || fail "the killed worker is still registered"

# 4. SIGTERM a worker under load: no accepted request fails.
load_pids=()
for i in $(seq 1 24); do
	DYN_REQUEST_PLANE=http,tcp,nats timeout 60 "$work/reqplane" call "$EP" \
		-d '{"text":"one two three four five six","delay_ms":150}' --count 2 >"$work/load-$i.out" 2>"$work/load-$i.err" &
	load_pids+=($!)
done
sleep 0.5
term_at=$SECONDS
kill -TERM "${worker_pid[http]}"
load_failed=0
for i in "${!load_pids[@]}"; do
	if ! wait "${load_pids[$i]}"; then
		load_failed=$((load_failed + 1))
		echo "     call $((i + 1)): $(tail -n 1 "$work/load-$((i + 1)).err")"
	fi
done
if [ "$load_failed" -eq 0 ]; then
	ok "SIGTERM under load: all 24 callers (48 requests) completed"
else
	fail "SIGTERM under load: $load_failed of 24 callers failed"
fi
if wait "${worker_pid[http]}"; then
	ok "the SIGTERMed worker drained and exited 0 after $((SECONDS - term_at))s"
else
	fail "the SIGTERMed worker exited non-zero: $(tail -n 3 "$work/worker-http.log")"
fi
grep -q 'msg=draining' "$work/worker-http.log" && ok "the worker logged its drain" || fail "no drain in the worker's log"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
