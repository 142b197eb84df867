#!/usr/bin/env bash
# Serve briefs on this machine: a local mosquitto (installed from Debian if missing, started on
# 127.0.0.1:1883 unless something already listens there) and packd on the CPU backend with the
# shipped default bundle. On a fresh machine it also installs the C toolchain (Debian) and the
# stable Rust toolchain (rustup) that building packd needs. Ctrl-C stops packd (and the mosquitto
# this script started).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${HOME:-/root}/.cargo/bin:$PATH"

sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
apt_updated=""
# Installs the Debian packages among "$@" that are not installed yet.
apt_install() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    [ "${#missing[@]}" -gt 0 ] || return 0
    echo "installing ${missing[*]} (Debian packages)…"
    [ -n "$apt_updated" ] || { $sudo_cmd apt-get update -qq; apt_updated=1; }
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# aws-lc-sys and zstd-sys compile C, and rustc links through cc.
apt_install gcc g++ libc6-dev make pkg-config cmake nasm curl ca-certificates
if ! command -v cargo >/dev/null 2>&1; then
    echo "installing the stable Rust toolchain (rustup)…"
    # Downloaded to a file first, so the installer never reads this script's stdin.
    rustup_init="$(mktemp)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs -o "$rustup_init"
    sh "$rustup_init" -y --profile minimal </dev/null
    rm -f "$rustup_init"
fi

port="${PACKD_LOCAL_PORT:-1883}"
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

broker_pid=""
if ! listening; then
    command -v mosquitto >/dev/null 2>&1 || apt_install mosquitto mosquitto-clients
    state="$(mktemp -d)"
    printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\nuser %s\n' "$port" "$(id -un)" > "$state/mosquitto.conf"
    mosquitto -c "$state/mosquitto.conf" > "$state/mosquitto.log" 2>&1 &
    broker_pid=$!
    for _ in $(seq 100); do listening && break; sleep 0.05; done
    listening || { echo "mosquitto did not start; see $state/mosquitto.log" >&2; exit 1; }
    echo "mosquitto listening on 127.0.0.1:$port (pid $broker_pid)"
fi
trap '[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true' EXIT

export PACKD_MQTT__URL="mqtt://127.0.0.1:$port"
export PACKD_DEVICE__ID="${PACKD_DEVICE__ID:-local}"
export PACKD_BUNDLES__DIR="${PACKD_BUNDLES__DIR:-$PWD/target/local-bundles}"
echo "packd: device '$PACKD_DEVICE__ID', bundles in $PACKD_BUNDLES__DIR"
echo "try:   cargo run --release --bin packctl -- brief --device $PACKD_DEVICE__ID --product tea --mood fresh"
cargo run --release --locked --bin packd -- --config examples/packd.local.toml
