#!/usr/bin/env bash
# Push throughput through the broker: a private mosquitto and a private packd (release build,
# CPU backend, a fresh bundle store seeded from engines/packd-default), a signed bundle made of
# the shipped one plus incompressible padding, pushed with `packctl bundle push` (256 KiB
# chunks, activated), and the MB/s packctl reports: end to end (connect to the `activated`
# reply, so it includes the appliance's unpack, hash checks, model load and self-test) and for
# the chunk phase alone.
#
#   bash examples/push-bench.sh                      # 32 MiB of padding, 2 pushes
#   PUSH_BENCH_PAD_MIB=128 PUSH_BENCH_RUNS=5 bash examples/push-bench.sh
#
# Settings (environment): PUSH_BENCH_PAD_MIB (default 32), PUSH_BENCH_RUNS (2),
# PUSH_BENCH_CHUNK (262144 bytes), PUSH_BENCH_PROFILE (release; debug only to try the script
# quickly, its figures mean nothing), PUSH_BENCH_DIR (where the keys, archives and the bundle store
# go; default a fresh temporary folder: put it on the disk you want to measure, since every
# chunk is fsynced), CARGO_TARGET_DIR (as for cargo). Needs mosquitto (Debian: mosquitto,
# mosquitto-clients) and cargo. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
export PATH="${HOME:-/root}/.cargo/bin:/usr/sbin:/sbin:$PATH"

pad_mib="${PUSH_BENCH_PAD_MIB:-32}"
runs="${PUSH_BENCH_RUNS:-2}"
chunk="${PUSH_BENCH_CHUNK:-262144}"
device="bench-$$"

for tool in mosquitto mosquitto_sub cargo; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "push-bench: $tool not found (apt-get install mosquitto mosquitto-clients; rustup)" >&2
        exit 1
    }
done

work="${PUSH_BENCH_DIR:-}"
cleanup_work=""
if [ -z "$work" ]; then
    work="$(mktemp -d -t packd-push-bench.XXXXXX)"
    cleanup_work="$work"
fi
mkdir -p "$work"
work="$(cd "$work" && pwd)"

broker_pid=""
packd_pid=""
cleanup() {
    [ -n "$packd_pid" ] && kill "$packd_pid" 2>/dev/null && wait "$packd_pid" 2>/dev/null
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
    [ -n "$cleanup_work" ] && rm -rf "$cleanup_work"
    return 0
}
trap cleanup EXIT

profile="${PUSH_BENCH_PROFILE:-release}"
case "$profile" in
    release) build_flags=(--release); bin="${CARGO_TARGET_DIR:-$root/target}/release" ;;
    debug) build_flags=(); bin="${CARGO_TARGET_DIR:-$root/target}/debug" ;;
    *) echo "push-bench: PUSH_BENCH_PROFILE is release or debug" >&2; exit 1 ;;
esac
echo "==> building packd and packctl ($profile)"
cargo build "${build_flags[@]}" --locked --bin packd --bin packctl >&2
packctl() { "$bin/packctl" --config "$work/packctl.toml" "$@"; }

# --- a private mosquitto on a free loopback port -----------------------------------------
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=""
for _ in $(seq 50); do
    candidate=$((20000 + RANDOM % 40000))
    listening "$candidate" || { port="$candidate"; break; }
done
[ -n "$port" ] || { echo "push-bench: no free port found" >&2; exit 1; }
cat > "$work/mosquitto.conf" <<EOF
listener $port 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
user $(id -un)
EOF
mosquitto -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
broker_pid=$!
for _ in $(seq 200); do listening "$port" && break; sleep 0.05; done
listening "$port" || { echo "push-bench: mosquitto did not start:" >&2; cat "$work/mosquitto.log" >&2; exit 1; }

# --- a signing key, packd trusting it -------------------------------------------------------
packctl keygen --name bench --dir "$work/keys" > /dev/null
printf '[mqtt]\nurl = "mqtt://127.0.0.1:%s"\n' "$port" > "$work/packctl.toml"
rm -rf "$work/bundles"
cat > "$work/packd.toml" <<EOF
[mqtt]
url = "mqtt://127.0.0.1:$port"
[device]
id = "$device"
[bundles]
dir = "$work/bundles"
seed = "$root/engines/packd-default"
trusted_keys = ["$work/keys/bench.pub"]
[backend]
kind = "cpu"
[log]
target = "stderr"
level = "info"
EOF
"$bin/packd" --config "$work/packd.toml" > "$work/packd.log" 2>&1 &
packd_pid=$!
state_topic="packd/v1/devices/$device/state"
online=""
for _ in $(seq 60); do
    kill -0 "$packd_pid" 2>/dev/null || { echo "push-bench: packd exited:" >&2; cat "$work/packd.log" >&2; exit 1; }
    state="$(mosquitto_sub -h 127.0.0.1 -p "$port" -V mqttv5 -t "$state_topic" -C 1 -W 1 2>/dev/null || true)"
    case "$state" in *'"status":"online"'*) online=yes; break ;; esac
done
[ -n "$online" ] || { echo "push-bench: packd did not come online:" >&2; cat "$work/packd.log" >&2; exit 1; }

# --- the padded bundles: the shipped one, a new version, N MiB of random bytes -------------
head -c "$((pad_mib * 1024 * 1024))" /dev/urandom > "$work/padding.bin"
pad_sha="$(sha256sum "$work/padding.bin" | cut -d' ' -f1)"
pad_size="$(stat -c %s "$work/padding.bin")"

echo "==> $runs push(es) of the shipped bundle + $pad_mib MiB padding, $chunk-byte chunks, to device $device ($profile build)"
echo "    machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
echo "    bundle store: $work/bundles ($(df -T "$work" | awk 'NR==2 {print $2}'))"
rates=()
chunk_rates=()
for run in $(seq "$runs"); do
    version="1.1.$run"   # above the seeded 1.0.2 and rising: an older one would be a downgrade
    dir="$work/bundle-$run"
    rm -rf "$dir"
    cp -r "$root/engines/packd-default" "$dir"
    cp "$work/padding.bin" "$dir/padding.bin"
    # The first `version = ` line is the bundle's own (catalogue versions are inline tables).
    sed -i "0,/^version = .*/s//version = \"$version\"/" "$dir/manifest.toml"
    printf '\n[[files]]\npath = "padding.bin"\nsha256 = "%s"\nsize = %s\n' "$pad_sha" "$pad_size" >> "$dir/manifest.toml"
    archive="$work/packd-default-$version.bundle.tar.zst"
    packctl bundle build "$dir" --out "$archive" > "$work/build.log" 2>&1 ||
        { cat "$work/build.log" >&2; exit 1; }
    packctl bundle sign "$archive" --key "$work/keys/bench.key" > "$work/sign.log" 2>&1 ||
        { cat "$work/sign.log" >&2; exit 1; }
    rm -rf "$dir"

    set +e
    packctl bundle push "$archive" --device "$device" --chunk-size "$chunk" \
        > "$work/push-$run.out" 2> "$work/push-$run.err"
    status=$?
    set -e
    summary="$(grep -E '^sent [0-9]+ bytes' "$work/push-$run.err" || true)"
    if [ "$status" -ne 0 ] || [ -z "$summary" ] || ! grep -q activated "$work/push-$run.out"; then
        echo "push-bench: push $run failed (exit $status):" >&2
        cat "$work/push-$run.out" "$work/push-$run.err" >&2
        tail -20 "$work/packd.log" >&2
        exit 1
    fi
    # sent B bytes in S s from connect to the last commit reply: R MB/s (chunk sending alone S2 s, R2 MB/s)
    rate="$(sed -E 's/.*reply: ([0-9.]+) MB\/s.*/\1/' <<<"$summary")"
    chunk_rate="$(sed -E 's/.*, ([0-9.]+) MB\/s\)$/\1/' <<<"$summary")"
    rates+=("$rate")
    chunk_rates+=("$chunk_rate")
    echo "    push $run: $summary"
    rm -f "$archive" "$archive.sig"
done

range() { printf '%s\n' "$@" | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {if (lo==hi) print lo; else print lo "–" hi}'; }
echo "==> end to end (begin … activated, including unpack, hashes, model load, self-test): $(range "${rates[@]}") MB/s"
echo "==> chunk phase alone: $(range "${chunk_rates[@]}") MB/s"
