#!/usr/bin/env bash
# Fuzzing CI step: `bash .ci/fuzz.sh` from anywhere in the repository.
#
# Builds the libFuzzer targets in fuzz/ and runs each one briefly from its committed seed
# corpus (fuzz/corpus/<target>/), prints the executions per target, and fails if any target
# crashes, leaks, times out on one input or goes over the memory limit. The input that did it
# is saved under fuzz/artifacts/<target>/; replay it with
#     fuzz/target/x86_64-unknown-linux-gnu/release/<target> fuzz/artifacts/<target>/<file>
# (or, where cargo-fuzz is installed, RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <file>).
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default 30)
#   FUZZ_RSS_MB      libFuzzer's memory limit per process in MiB (default 2048)
#   FUZZ_TIMEOUT     seconds one input may take before it counts as a hang (default 60)
#   FUZZ_TARGETS     space-separated subset (default: all of fuzz/fuzz_targets/*.rs)
#   FUZZ_TARGET_DIR  cargo target directory (default fuzz/target)
#   FUZZ_OPT_LEVEL   optimisation level of the build (default 3, the release profile's, as
#                    cargo-fuzz builds; .ci/run asks for 1: far less time in LLVM for a smoke
#                    run whose executions per second matter little)
#
# The machine needs only a stable Rust toolchain and a C++ compiler. The targets are built
# with plain cargo and the instrumentation flags cargo-fuzz passes (sancov, AddressSanitizer,
# --cfg fuzzing, debug assertions), which stable rustc accepts with RUSTC_BOOTSTRAP=1. Not
# through cargo-fuzz itself: installing it from source, and its release build of every
# dependency at one codegen unit with full debug info, cost CI minutes on two cores for no
# finding a 30-second smoke run could make.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export PATH="${HOME:-/root}/.cargo/bin:/root/.cargo/bin:$PATH"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TIMEOUT="${FUZZ_TIMEOUT:-60}"
TARGET_DIR="${FUZZ_TARGET_DIR:-$ROOT/fuzz/target}"
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a TARGETS <<<"$FUZZ_TARGETS"
else
    TARGETS=()
    for source in fuzz/fuzz_targets/*.rs; do
        TARGETS+=("$(basename "$source" .rs)")
    done
fi

# Each step says when it began (seconds since this script started): where CI time goes.
step() { printf '\n==> [%4d s] %s\n' "$SECONDS" "$*"; }

step "toolchain"
# libfuzzer-sys compiles libFuzzer (C++) with the host compiler.
if ! command -v c++ >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
    echo "    installing g++ (libFuzzer is C++)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends g++ </dev/null
fi
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
echo "    $(rustc --version), host $TRIPLE"

step "build (${TARGETS[*]})"
# cargo-fuzz's flags (src/project.rs), less its `-C codegen-units=1` and full debug info. The
# explicit --target keeps RUSTFLAGS off build scripts and proc macros, as cargo-fuzz does.
FUZZ_RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
FUZZ_RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
FUZZ_RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
FUZZ_RUSTFLAGS+=" -Cllvm-args=-sanitizer-coverage-stack-depth --cfg fuzzing -Zsanitizer=address -Cdebug-assertions"
bin_args=()
for target in "${TARGETS[@]}"; do bin_args+=(--bin "$target"); done
CARGO_PROFILE_RELEASE_OPT_LEVEL="${FUZZ_OPT_LEVEL:-3}" RUSTFLAGS="$FUZZ_RUSTFLAGS" cargo build --manifest-path fuzz/Cargo.toml --target "$TRIPLE" --release \
    --target-dir "$TARGET_DIR" "${bin_args[@]}"
BIN_DIR="$TARGET_DIR/$TRIPLE/release"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_odr_violation=0"

LOGS=$(mktemp -d)
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT
declare -A EXECUTIONS RESULT
failed=0
for target in "${TARGETS[@]}"; do
    step "run $target (${SECONDS_PER_TARGET} s)"
    # New inputs go to a scratch corpus (listed first); the committed seeds stay as they are.
    mkdir -p "$SCRATCH/$target"
    args=(-max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT"
          -print_final_stats=1)
    if [ -f "fuzz/dicts/$target.dict" ]; then
        args+=(-dict="fuzz/dicts/$target.dict")
    fi
    log="$LOGS/$target.log"
    touch "$SCRATCH/$target.started"
    set +e
    mkdir -p "fuzz/artifacts/$target"
    "$BIN_DIR/$target" -artifact_prefix="fuzz/artifacts/$target/" "${args[@]}" \
        "$SCRATCH/$target" "fuzz/corpus/$target" >"$log" 2>&1
    status=$?
    set -e
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done [0-9]+ runs' "$log" | sed 's/^/    /' || true
    EXECUTIONS[$target]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$status" -eq 0 ]; then
        RESULT[$target]="ok"
    else
        failed=1
        RESULT[$target]="FAILED (exit $status)"
        echo "    $target FAILED; the end of its log ($log):"
        tail -n 60 "$log" | sed 's/^/    | /'
        # CI keeps no files: print each input that did it, so it can be replayed from the log
        # (base64 -d > input; fuzz/target/<triple>/release/<target> input).
        # Only this run's: a developer's machine may hold older ones.
        find "fuzz/artifacts/$target" -type f -newer "$SCRATCH/$target.started" 2>/dev/null |
        while read -r artifact; do
            echo "    artifact: $artifact ($(stat -c %s "$artifact") bytes), base64:"
            head -c 65536 "$artifact" | base64 -w 100 | sed 's/^/    | /'
        done
    fi
done

step "summary (${SECONDS_PER_TARGET} s per target, logs in $LOGS)"
total=0
printf '    %-10s %14s  %s\n' target executions result
for target in "${TARGETS[@]}"; do
    runs="${EXECUTIONS[$target]:-?}"
    printf '    %-10s %14s  %s\n' "$target" "$runs" "${RESULT[$target]}"
    if [[ "$runs" =~ ^[0-9]+$ ]]; then total=$((total + runs)); fi
done
printf '    %-10s %14s\n' total "$total"
exit "$failed"
