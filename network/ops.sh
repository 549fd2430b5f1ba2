#!/usr/bin/env bash
# Each node of the local network (network/local.sh) as its operations service reports it: health
# (failing checks named), Raft leadership, height, and what it has ordered.
#
#   network/ops.sh            one line per node
#   network/ops.sh metrics N  node N's whole /metrics (Prometheus text)
#
# Node i's operations port is 127.0.0.1:(8440+i) ($ORDO_NET_OPS_BASE), as local.sh sets it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
net="${ORDO_NET_DIR:-$here/.data/local}"
ops_base="${ORDO_NET_OPS_BASE:-8440}"

die() { echo "ops.sh: $*" >&2; exit 1; }
command -v curl >/dev/null || die "needs curl"
[ -d "$net/nodes" ] || die "no network in $net (network/local.sh up N)"
node_ids() { ls "$net/nodes" | sed 's/^node//' | sort -n; }
ops() { echo "127.0.0.1:$((ops_base + $1))"; }

# The value of metric NAME (labels as given, e.g. 'ledger_blockchain_height{channel="ordo"}').
metric() { awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print "-" }'; }

if [ "${1:-}" = metrics ]; then
  [ -n "${2:-}" ] || die "metrics takes a node id"
  exec curl -sS --max-time 5 "http://$(ops "$2")/metrics"
fi

printf '%-5s %-21s %-8s %-7s %-7s %-12s %s\n' NODE OPERATIONS LEADER HEIGHT BLOCKS TRANSACTIONS HEALTH
for id in $(node_ids); do
  addr=$(ops "$id")
  if ! health=$(curl -sS --max-time 5 "http://$addr/healthz" 2>/dev/null); then
    printf '%-5s %-21s %s\n' "$id" "$addr" "not answering"
    continue
  fi
  metrics=$(curl -sS --max-time 5 "http://$addr/metrics" 2>/dev/null || true)
  ch='{channel="ordo"}'
  printf '%-5s %-21s %-8s %-7s %-7s %-12s %s\n' "$id" "$addr" \
    "$(metric "consensus_etcdraft_is_leader$ch" <<<"$metrics")" \
    "$(metric "ledger_blockchain_height$ch" <<<"$metrics")" \
    "$(metric "ordo_blocks_ordered$ch" <<<"$metrics")" \
    "$(metric "ordo_transactions_ordered$ch" <<<"$metrics")" \
    "$health"
done
