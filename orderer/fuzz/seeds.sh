#!/usr/bin/env bash
# Writes the fuzz corpus's seeds (orderer/fuzz/corpus/*) and the envelope case's channel
# (orderer/fuzz/fixtures/genesis.block): starts a development node in a temporary folder, sends it
# a few transactions with peer-sim, stops it, and takes the seeds from its data (examples/seeds.rs).
# Binaries come from $ORDO_BIN, else target/release (built if missing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="${ORDO_BIN:-$root/target/release}"
if [ ! -x "$bin/orderer" ] || [ ! -x "$bin/peer-sim" ]; then
  (cd "$root" && cargo build --release --bins --quiet)
fi
tmp=$(mktemp -d)
node=""
cleanup() {
  [ -z "$node" ] || kill "$node" 2>/dev/null || true
  [ -z "$node" ] || wait "$node" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

RUST_LOG=warn "$bin/orderer" --data-dir "$tmp/data" --listen 127.0.0.1:0 >"$tmp/node.log" 2>&1 &
node=$!
address=""
for _ in $(seq 1 100); do
  address=$(sed -n 's/^listening on //p' "$tmp/node.log")
  [ -n "$address" ] && break
  kill -0 "$node" 2>/dev/null || { cat "$tmp/node.log" >&2; echo "seeds.sh: the node exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { cat "$tmp/node.log" >&2; echo "seeds.sh: the node did not start" >&2; exit 1; }
tls=()
ca=$(sed -n 's/^TLS CA: *//p' "$tmp/node.log")
[ -z "$ca" ] || tls=(--tls-ca "$ca")
"$bin/peer-sim" run --endpoint "$address" "${tls[@]}" --msp "$tmp/data/crypto/Org1/users/User1/msp" \
  --mspid Org1MSP --count 8 --tx-bytes 200 >"$tmp/peer-sim.log" 2>&1 ||
  { cat "$tmp/peer-sim.log" >&2; echo "seeds.sh: peer-sim failed" >&2; exit 1; }
kill "$node"
wait "$node" 2>/dev/null || true
node=""
(cd "$root" && cargo run --quiet -p ordo-fuzz --example seeds -- "$tmp/data" "$here")
