#!/usr/bin/env bash
# Leader failover, measured over repeated kills: a 3-node network on loopback (network/local.sh)
# under open-loop peer-sim load. In each round the leader is SIGKILLed mid-load, and the round
# records
#   - kill -> leader: until the new leader logs that it leads (its log's timestamp);
#   - block gap: the longest time with no block delivered on a survivor's Deliver during the
#     round. It spans the kill and starts at the last block before it, so it bounds the time from
#     the kill to the next block from above;
#   - terms: how far the term moved (1 = the election took one round);
# then the killed node is restarted and the next round waits until it has caught up.
#
#   network/failover.sh [ROUNDS]        (default 10)
#
# Settings (environment): FAILOVER_RATE offered tx/s (default 8000), FAILOVER_SECONDS of load per
# round (8), FAILOVER_KILL_AFTER seconds into the load (4), FAILOVER_TX_BYTES (1024); election
# timeouts ORDO_ELECTION_MIN_MS / ORDO_ELECTION_MAX_MS and ports ORDO_CLIENT_BASE /
# ORDO_NET_CLUSTER_BASE as for local.sh; binaries from $ORDO_BIN, else release binaries (built if
# missing). Results: rounds.tsv, summary.md and one peer-sim report per round under
# $BENCH_OUT/failover-<time>/ (default bench-results/, ignored by git).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rounds=${1:-10}
rate=${FAILOVER_RATE:-8000}
seconds=${FAILOVER_SECONDS:-8}
kill_after=${FAILOVER_KILL_AFTER:-4}
tx_bytes=${FAILOVER_TX_BYTES:-1024}
client_base="${ORDO_CLIENT_BASE:-7050}"
cluster_base="${ORDO_NET_CLUSTER_BASE:-7150}"
net="${ORDO_NET_DIR:-$here/.data/failover}"
nodes=(1 2 3)

die() { echo "failover.sh: $*" >&2; exit 1; }
log() { echo "failover.sh: $*" >&2; }
now() { date +%s.%N; }
command -v bc >/dev/null || die "bc is needed"
# shellcheck source=network/lib.sh
. "$here/lib.sh"
ordo_binaries
export ORDO_BIN="$bin"

out="$(cd "$root" && mkdir -p "${BENCH_OUT:-bench-results}" && cd "${BENCH_OUT:-bench-results}" && pwd)/failover-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
commit=$(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)

local_sh() {
  ORDO_NET_DIR="$net" ORDO_CLIENT_BASE="$client_base" ORDO_NET_CLUSTER_BASE="$cluster_base" \
    "$here/local.sh" "$@"
}
# The nodes' logs are kept with the results.
trap 'cp -r "$net/logs" "$out/" 2>/dev/null; local_sh down >/dev/null 2>&1 || true' EXIT
# Each node logs when it starts leading and when it stands for election (after a won pre-vote).
export RUST_LOG="${FAILOVER_RUST_LOG:-warn,ordo_orderer::chain::raft::election=info}"


# status ID: node ID's own status, from `orderer admin status --json`, as the words
# "STATE TERM LEADER APPLIED QUORUM" (e.g. "leader 3 1 20 true"; LEADER and APPLIED are 0 if
# none); empty if it does not answer.
status() {
  timeout 2 "$bin/orderer" admin --cluster "127.0.0.1:$((cluster_base + $1))" "${admin_tls[@]}" status --json 2>/dev/null |
    python3 -c 'import json, sys
g = json.load(sys.stdin)["groups"][0]
print(g["state"], g["term"], g["leader"] or 0, g["applied_index"] or 0, str(g["quorum"]).lower())' \
      2>/dev/null || true
}
# word N: the Nth word of each input line.
word() { cut -d' ' -f"$1"; }
# leads_with_quorum ID: node ID reports itself leader with a quorum.
leads_with_quorum() { [ "$(status "$1" | word 1,5)" = "leader true" ]; }
# leader_among IDS...: the first of IDS that reports itself leader with a quorum.
leader_among() {
  local id
  for id in "$@"; do
    if leads_with_quorum "$id"; then echo "$id"; return; fi
  done
}
term_of() { status "$1" | word 2; }
applied_of() { status "$1" | word 4; }

# wait_until SECONDS COMMAND...: polls COMMAND every 50 ms, fails the run after SECONDS.
wait_until() {
  local limit=$1; shift
  local until_t; until_t=$(echo "$(now) + $limit" | bc)
  until "$@"; do
    [ "$(echo "$(now) > $until_t" | bc)" = 1 ] && return 1
    sleep 0.05
  done
}
# stable_leader: every node follows one leader in one term, and it has a quorum; prints it.
stable_leader() {
  local id line leader="" term="" seen
  for id in "${nodes[@]}"; do
    line=$(status "$id")
    seen="$(echo "$line" | word 3) $(echo "$line" | word 2)"
    [ -n "$leader" ] || { leader=${seen% *}; term=${seen#* }; }
    [ "$seen" = "$leader $term" ] && [ -n "$leader" ] && [ "$leader" != 0 ] || return 1
  done
  leads_with_quorum "$leader" || return 1
  echo "$leader"
}
has_leader() { stable_leader >/dev/null; }
# caught_up ID: node ID follows a leader with a quorum and has applied what the leader has.
caught_up() {
  local leader; leader=$(stable_leader || true)
  [ -n "$leader" ] || return 1
  [ "$(status "$1" | word 5)" = true ] || return 1
  [ "$(applied_of "$1")" = "$(applied_of "$leader")" ]
}

local_sh up 3 >/dev/null
ordo_tls_args "$net/crypto"
wait_until 30 has_leader || die "no leader elected within 30 s"
endpoints=$(for i in "${nodes[@]}"; do printf '127.0.0.1:%s,' "$((client_base + i))"; done)
endpoints=${endpoints%,}
msp=$(ordo_client_msp "$net/crypto")
log "commit $commit; $rounds rounds at $rate tx/s, leader killed ${kill_after}s into ${seconds}s of load; elections ${ORDO_ELECTION_MIN_MS:-400}-${ORDO_ELECTION_MAX_MS:-800} ms; results in $out"
printf 'round\tkilled\tnew_leader\tkill_to_leader_ms\tblock_gap_ms\tgap_from_s\tterm_before\tterm_after\n' >"$out/rounds.tsv"

for round in $(seq 1 "$rounds"); do
  wait_until 30 has_leader || die "round $round: no leader that every node follows"
  leader=$(stable_leader)
  survivors=()
  for i in "${nodes[@]}"; do [ "$i" = "$leader" ] || survivors+=("$i"); done
  term_before=$(term_of "$leader")
  label="round$round"
  "$bin/peer-sim" bench --label "$label" --msp "$msp" --mspid "$ordo_client_mspid" \
    "${peer_tls[@]}" --endpoint "$endpoints" \
    --deliver-endpoint "127.0.0.1:$((client_base + survivors[0]))" --streams 32 \
    --verify-seconds 0.2 --fsync on --out-dir "$out" --tag "commit=$commit" \
    --rate "$rate" --duration "$seconds" --tx-bytes "$tx_bytes" --json \
    >"$out/$label.out" 2>"$out/$label.err" &
  bench_pid=$!
  wait_until 120 grep -q "load started" "$out/$label.err" ||
    { cat "$out/$label.err" >&2; die "round $round: the load did not start"; }
  sleep "$kill_after"
  killed_at=$(now)
  local_sh kill "$leader" >/dev/null
  new_leader=""
  until [ -n "$new_leader" ]; do
    new_leader=$(leader_among "${survivors[@]}")
    [ "$(echo "$(now) - $killed_at > 30" | bc)" = 1 ] && die "round $round: no new leader within 30 s"
  done
  term_after=$(term_of "$new_leader")
  lead_ts=$(sed 's/\x1b\[[0-9;]*m//g' "$net/logs/node$new_leader.log" | grep " leading " | tail -n 1 | awk '{ print $1 }') || true
  [ -n "$lead_ts" ] || die "round $round: node $new_leader leads but its log has no 'leading' line (RUST_LOG=$RUST_LOG)"
  to_leader=$(printf '%.0f' "$(echo "($(date -d "$lead_ts" +%s.%N) - $killed_at) * 1000" | bc)")
  wait "$bench_pid" || { cat "$out/$label.out" "$out/$label.err" >&2; die "round $round: the load failed"; }
  # The longest block gap (ms, and seconds into the run), from the JSON line of
  # `peer-sim bench --json`; empty if it saw none.
  gaps=$(python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
g, f = r["longest_block_gap_ms"], r["longest_block_gap_from_s"]
print("" if g is None else "%.0f" % g, "" if f is None else "%.2f" % f)' \
    "$out/$label.out" || true)
  gap=${gaps% *}
  gap_from=${gaps#* }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$leader" "$new_leader" "$to_leader" \
    "$gap" "$gap_from" "$term_before" "$term_after" >>"$out/rounds.tsv"
  log "round $round: killed $leader; node $new_leader leads after $to_leader ms (term $term_before -> $term_after); longest block gap $gap ms (from ${gap_from}s)"
  local_sh restart "$leader" >/dev/null
  wait_until 120 caught_up "$leader" || die "round $round: node $leader did not catch up"
done

# min / median / max of a column of rounds.tsv.
stats() {
  tail -n +2 "$out/rounds.tsv" | cut -f "$1" | sort -n |
    awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%d / %d / %d", v[1], m, v[NR] }'
}
{
  echo "Failover over $rounds leader SIGKILLs, commit $commit, $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores."
  echo "Load: $rate tx/s of $tx_bytes B offered (open loop, 32 streams over the 3 nodes), leader killed ${kill_after}s into each ${seconds}s round; elections ${ORDO_ELECTION_MIN_MS:-400}-${ORDO_ELECTION_MAX_MS:-800} ms."
  echo
  echo "| | min / median / max |"
  echo "|---|---|"
  echo "| kill → new leader leads (ms) | $(stats 4) |"
  echo "| longest block gap, spanning the kill (ms) | $(stats 5) |"
  echo "| terms per failover | $(tail -n +2 "$out/rounds.tsv" | awk -F'\t' '{ d = $8 - $7; if (NR == 1 || d < lo) lo = d; if (d > hi) hi = d } END { printf "%d / – / %d", lo, hi }') |"
  echo
  echo "Rounds with a block gap over 1 s: $(tail -n +2 "$out/rounds.tsv" | awk -F'\t' '$5 > 1000' | wc -l) of $rounds."
} >"$out/summary.md"
echo
cat "$out/summary.md"
echo
echo "results: $out"
