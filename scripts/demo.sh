#!/usr/bin/env bash
# Runs spooky (config/example.yaml) in front of two demo HTTP/3 backends (spooky-testd), sends a
# few requests with gtlsclient and shows which backend answered each, then keeps spooky running
# until Ctrl-C (set DEMO_EXIT=1 to stop right after the requests).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
CERTS=demo/certs
LOGS=demo/logs
mkdir -p "$CERTS" "$LOGS"

if [ ! -f "$CERTS/server.crt" ]; then
    echo "demo: generating a CA and a localhost certificate in $CERTS"
    certtool --generate-privkey --key-type=ecdsa --no-text --outfile "$CERTS/ca.key" 2>/dev/null
    printf 'cn = "spooky demo CA"\nca\ncert_signing_key\nexpiration_days = 30\n' > "$CERTS/ca.tmpl"
    certtool --generate-self-signed --load-privkey "$CERTS/ca.key" --template "$CERTS/ca.tmpl" \
        --no-text --outfile "$CERTS/ca.crt" 2>/dev/null
    certtool --generate-privkey --key-type=ecdsa --no-text --outfile "$CERTS/server.key" 2>/dev/null
    printf 'cn = "localhost"\ndns_name = "localhost"\nip_address = "127.0.0.1"\nip_address = "::1"\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 30\n' > "$CERTS/server.tmpl"
    certtool --generate-certificate --load-privkey "$CERTS/server.key" --load-ca-certificate "$CERTS/ca.crt" \
        --load-ca-privkey "$CERTS/ca.key" --template "$CERTS/server.tmpl" --no-text \
        --outfile "$CERTS/server.crt" 2>/dev/null
fi

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

wait_for() { # file regex
    for _ in $(seq 1 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "demo: timed out waiting for '$2' in $1" >&2
    cat "$1" >&2
    return 1
}

for port in 9443 9444; do
    "$BUILD/spooky-testd" --address 127.0.0.1 --port $port --cert "$CERTS/server.crt" \
        --key "$CERTS/server.key" --id "backend-$port" > "$LOGS/testd-$port.log" 2>&1 &
    pids+=($!)
    wait_for "$LOGS/testd-$port.log" 'event=ready'
done

"$BUILD/spooky" -c config/example.yaml > "$LOGS/spooky.log" 2>&1 &
pids+=($!)
wait_for "$LOGS/spooky.log" 'event=ready'
echo "demo: spooky is listening on https://localhost:8443 (HTTP/3 only), logs in $LOGS/"
echo

for path in /api/users /api/orders /api/items /hello /index.html /about; do
    out=$(gtlsclient --no-quic-dump --exit-on-all-streams-close --timeout=5s \
        127.0.0.1 8443 "https://localhost:8443$path" 2>&1 || true)
    status=$(echo "$out" | sed -n 's/.*\[:status: \([0-9]*\)\].*/\1/p' | head -1)
    backend=$(echo "$out" | sed -n 's/.*\[x-backend-id: \([^]]*\)\].*/\1/p' | head -1)
    printf 'GET %-12s -> %s from %s\n' "$path" "${status:-error}" "${backend:-?}"
done
echo
echo "demo: access log:"
grep 'area=access' "$LOGS/spooky.log" | sed 's/^/  /'
if [ "${DEMO_EXIT:-0}" = "1" ]; then
    exit 0
fi
echo
echo "demo: spooky keeps running; try: gtlsclient 127.0.0.1 8443 https://localhost:8443/api/x  (Ctrl-C to stop)"
wait "${pids[-1]}"
