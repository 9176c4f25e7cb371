#!/usr/bin/env bash
# Installs every Debian 12 package that spooky's build, demo and tests need.
# Idempotent: runs apt-get update once and only when something is missing.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config clang-format clang libclang-rt-14-dev
    libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev libgnutls28-dev gnutls-bin
    libev-dev libnghttp2-dev libhttp-parser-dev liburcu-dev
    libmicrohttpd-dev libjansson-dev libcmocka-dev
    ngtcp2-client ngtcp2-server caddy nginx-light nghttp2-server nghttp2-client
    python3 python3-pytest golang-go golang-github-lucas-clemente-quic-go-dev nftables iproute2
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages enable system services we never use; spooky's tests start their own.
for svc in nginx caddy; do
    if command -v systemctl >/dev/null 2>&1; then
        $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true
    fi
done
