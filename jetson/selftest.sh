#!/usr/bin/env bash
# Runs a packd bundle's self-test vectors on every target (`packd selftest`: cpu, trt:gpu,
# trt:dla0, trt:dla1) and, where trtexec is installed, times each registered engine with
# `trtexec --loadEngine` on its own core. Prints a latency summary per target.
# Installed as /usr/lib/packd/selftest.sh. Exit status 0 only when everything passed.
#
# trtexec timing flags (TensorRT 10.x and 11.x): --loadEngine=<file>, --useDLACore=N (system
# option), --warmUp=<ms>, --duration=<s>; the "Performance summary" prints "Latency: ... median =
# X ms, ... percentile(99%) = Y ms" (host latency: H2D + compute + D2H) and "GPU Compute Time: ...".
#
# Verified here: bash -n and shellcheck, plus a run against stand-in packd/trtexec programs.
set -euo pipefail

PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $PROG [options]

Options:
  --bundle DIR        bundle to test (default: packd's active bundle)
  --config FILE       packd config (default: /etc/packd/packd.toml when it exists)
  --targets "LIST"    targets for \`packd selftest\`, e.g. "cpu trt:dla0" (default: every target
                      the bundle has engines for, plus cpu)
  --repeat N          passes over the vectors per target, for the latency figures (default: 50)
  --duration S        seconds per trtexec timing run (default: 5)
  --trtexec PATH      trtexec (default: \$TRTEXEC, trtexec on PATH, /usr/src/tensorrt/bin/trtexec)
  --no-trtexec        skip the trtexec timing runs
  --packd PATH        packd binary (default: \$PACKD, packd on PATH, then /usr/bin/packd)
  --require-engines   fail when the bundle has no registered engine (only cpu would be tested)
  -h, --help          this help

Measure at the power mode you deploy with (sudo nvpmodel -q; see jetson/README.md).
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }
need_value() { if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }

BUNDLE=""
CONFIG=""
TARGETS=""
REPEAT=50
DURATION=5
TRTEXEC="${TRTEXEC:-}"
USE_TRTEXEC=1
PACKD="${PACKD:-}"
REQUIRE_ENGINES=0
while [ "$#" -gt 0 ]; do
    case "$1" in
        --bundle) need_value "$@"; BUNDLE="$2"; shift 2 ;;
        --bundle=*) BUNDLE="${1#*=}"; shift ;;
        --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
        --config=*) CONFIG="${1#*=}"; shift ;;
        --targets) need_value "$@"; TARGETS="$2"; shift 2 ;;
        --targets=*) TARGETS="${1#*=}"; shift ;;
        --repeat) need_value "$@"; REPEAT="$2"; shift 2 ;;
        --repeat=*) REPEAT="${1#*=}"; shift ;;
        --duration) need_value "$@"; DURATION="$2"; shift 2 ;;
        --duration=*) DURATION="${1#*=}"; shift ;;
        --trtexec) need_value "$@"; TRTEXEC="$2"; shift 2 ;;
        --trtexec=*) TRTEXEC="${1#*=}"; shift ;;
        --no-trtexec) USE_TRTEXEC=0; shift ;;
        --packd) need_value "$@"; PACKD="$2"; shift 2 ;;
        --packd=*) PACKD="${1#*=}"; shift ;;
        --require-engines) REQUIRE_ENGINES=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done
[[ "$REPEAT" =~ ^[1-9][0-9]*$ ]] || usage_error "--repeat takes a positive number"
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || usage_error "--duration takes a positive number of seconds"

if [ -z "$PACKD" ]; then
    PACKD="$(command -v packd || true)"
    [ -n "$PACKD" ] || PACKD=/usr/bin/packd
fi
[ -x "$PACKD" ] || die "packd not found at $PACKD (pass --packd PATH)"
if [ "$USE_TRTEXEC" -eq 1 ]; then
    if [ -z "$TRTEXEC" ]; then
        TRTEXEC="$(command -v trtexec || true)"
        [ -n "$TRTEXEC" ] || TRTEXEC=/usr/src/tensorrt/bin/trtexec
    fi
    if [ ! -x "$TRTEXEC" ]; then
        say "no trtexec at $TRTEXEC: skipping the trtexec timing runs"
        USE_TRTEXEC=0
    fi
fi

if [ -z "$CONFIG" ] && [ -f /etc/packd/packd.toml ]; then CONFIG=/etc/packd/packd.toml; fi
CONFIG_ARGS=()
[ -z "$CONFIG" ] || CONFIG_ARGS=(--config "$CONFIG")
if [ -z "$BUNDLE" ]; then
    BUNDLE="$("$PACKD" active-bundle "${CONFIG_ARGS[@]}")" || die "\`packd active-bundle\` failed; pass --bundle DIR"
fi
[ -d "$BUNDLE" ] || die "bundle directory $BUNDLE does not exist"
BUNDLE="$(cd "$BUNDLE" && pwd -P)"

FAILED=0
say "bundle: $BUNDLE"
if command -v nvpmodel >/dev/null 2>&1; then
    mode="$(nvpmodel -q 2>/dev/null | sed -n 's/^NV Power Mode: *//p' | head -1 || true)"
    say "power mode: ${mode:-unknown (nvpmodel -q)}"
fi

# --- Registered engines ----------------------------------------------------------
engines="$("$PACKD" engine list "${CONFIG_ARGS[@]}" --bundle "$BUNDLE")" || die "\`packd engine list --bundle $BUNDLE\` failed"
ENGINE_TARGETS=()
declare -A ENGINE_FILE=() ENGINE_STATUS=()
while IFS=$'\t' read -r e_target _ _ e_file e_status; do
    [ -n "$e_target" ] || continue
    ENGINE_TARGETS+=("$e_target")
    ENGINE_FILE[$e_target]="$e_file"
    ENGINE_STATUS[$e_target]="$e_status"
    if [ "$e_status" != ok ]; then
        warn "engine $e_target ($e_file) is $e_status: rebuild it with build-engines.sh --missing-only"
        FAILED=1
    fi
done <<<"$engines"
if [ "${#ENGINE_TARGETS[@]}" -eq 0 ]; then
    if [ "$REQUIRE_ENGINES" -eq 1 ]; then
        die "the bundle has no registered engines; build them with /usr/lib/packd/build-engines.sh"
    fi
    say "the bundle has no registered engines: only the CPU backend is tested (build-engines.sh builds them)"
fi

# --- packd selftest --------------------------------------------------------------
selftest=("$PACKD" selftest "${CONFIG_ARGS[@]}" --bundle "$BUNDLE" --repeat "$REPEAT")
if [ -n "$TARGETS" ]; then
    read -r -a target_list <<<"$TARGETS"
    for t in "${target_list[@]}"; do selftest+=(--target "$t"); done
fi
say "running: ${selftest[*]}"
selftest_out="$(mktemp)"
trap 'rm -f "$selftest_out"' EXIT
set +e
"${selftest[@]}" 2>&1 | tee "$selftest_out"
selftest_rc=${PIPESTATUS[0]}
set -e
if [ "$selftest_rc" -ne 0 ]; then
    warn "packd selftest exited with $selftest_rc"
    FAILED=1
fi

# Rows: target precision cases max-deviation tolerance p50-us p99-us pass|FAIL
declare -A ST_P50=() ST_P99=() ST_RESULT=() ST_PRECISION=()
ST_ORDER=()
while read -r r_target r_precision _ _ _ r_p50 r_p99 r_result _; do
    case "$r_target" in cpu|trt:*) ;; *) continue ;; esac
    ST_ORDER+=("$r_target")
    ST_PRECISION[$r_target]="$r_precision"
    ST_P50[$r_target]="$r_p50"
    ST_P99[$r_target]="$r_p99"
    ST_RESULT[$r_target]="$r_result"
done <"$selftest_out"

# --- trtexec timing per engine -----------------------------------------------------
declare -A TX_MEDIAN=() TX_P99=() TX_COMPUTE=() TX_QPS=() TX_RESULT=()
ms_to_us() { awk -v ms="$1" 'BEGIN { if (ms == "") print "-"; else printf "%.0f", ms * 1000 }'; }
summary_value() { # $1 line prefix (e.g. "Latency"), $2 field (median | percentile(99%)), stdin log
    awk -v prefix="] $1: " -v key="$2" '
        index($0, prefix) {
            n = split(substr($0, index($0, prefix) + length(prefix)), parts, ", ")
            for (i = 1; i <= n; i++) {
                if (index(parts[i], key " = ") == 1) {
                    v = substr(parts[i], length(key) + 4); sub(/ ms.*/, "", v); print v; exit
                }
            }
            exit
        }'
}
if [ "$USE_TRTEXEC" -eq 1 ]; then
    for t in "${ENGINE_TARGETS[@]}"; do
        [ "${ENGINE_STATUS[$t]}" = ok ] || { TX_RESULT[$t]="${ENGINE_STATUS[$t]}"; continue; }
        plan="$BUNDLE/${ENGINE_FILE[$t]}"
        args=("--loadEngine=$plan" --warmUp=500 "--duration=$DURATION")
        [ "$t" = gpu ] || args+=("--useDLACore=${t#dla}")
        say "timing trt:$t: $TRTEXEC ${args[*]}"
        log="$(mktemp)"
        if "$TRTEXEC" "${args[@]}" >"$log" 2>&1 && grep -q '\] Latency: ' "$log"; then
            TX_MEDIAN[$t]="$(ms_to_us "$(summary_value Latency median <"$log")")"
            TX_P99[$t]="$(ms_to_us "$(summary_value Latency 'percentile(99%)' <"$log")")"
            TX_COMPUTE[$t]="$(ms_to_us "$(summary_value 'GPU Compute Time' median <"$log")")"
            TX_QPS[$t]="$(grep -m1 '\] Throughput: ' "$log" | sed -n 's/.*Throughput: \([0-9.]*\) qps.*/\1/p')"
            TX_RESULT[$t]="ok"
        else
            warn "trtexec timing of $t failed; last lines:"
            tail -n 15 "$log" | sed 's/^/    /' >&2
            TX_RESULT[$t]="FAILED"
            FAILED=1
        fi
        rm -f "$log"
    done
fi

# --- Summary ---------------------------------------------------------------------
printf '\nLatency per target (µs; packd = one brief through packd incl. pre/post-processing,\n'
printf 'trtexec = engine alone: host latency and GPU/DLA compute median)\n'
printf '%-9s %-9s %-9s %10s %10s %14s %14s %14s %10s\n' \
    target precision selftest "packd p50" "packd p99" "trtexec p50" "trtexec p99" "compute p50" "qps"
seen=()
for t in "${ST_ORDER[@]}" "${ENGINE_TARGETS[@]/#/trt:}"; do
    [ -n "$t" ] || continue
    case " ${seen[*]} " in *" $t "*) continue ;; esac
    seen+=("$t")
    e="${t#trt:}"
    tx="${TX_RESULT[$e]:-}"
    printf '%-9s %-9s %-9s %10s %10s %14s %14s %14s %10s\n' "$t" "${ST_PRECISION[$t]:--}" \
        "${ST_RESULT[$t]:-not run}" "${ST_P50[$t]:--}" "${ST_P99[$t]:--}" \
        "${TX_MEDIAN[$e]:-${tx:--}}" "${TX_P99[$e]:--}" "${TX_COMPUTE[$e]:--}" "${TX_QPS[$e]:--}"
    case "${ST_RESULT[$t]:-}" in FAIL*|fail*) FAILED=1 ;; esac
done
if [ "${#ST_ORDER[@]}" -eq 0 ] && [ "$selftest_rc" -eq 0 ]; then
    warn "no result rows recognised in the packd selftest output above"
fi

if [ "$FAILED" -ne 0 ]; then
    say "FAILED"
    exit 1
fi
say "all targets passed"
