#!/usr/bin/env bash
# Exposure scores of the shipped systemd units (`systemd-analyze security --offline=true`), each
# against the highest score it may have: a change that loosens a unit fails here. Run from
# anywhere; called by .ci/jetson.sh step 3 and by tests/systemd.rs. Prints one line per unit.
# Lower the limits when a unit gets tighter; raising one needs a reason in the commit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# unit (or unit+drop-in under systemd/examples/)  highest exposure allowed
LIMITS=(
    "packd.service 1.3"
    "packd-engines.service 1.0"
    "packd.service+cpu-only.conf 1.1"
    "packd.service+remote-broker.conf 1.4"
)

command -v systemd-analyze >/dev/null || { echo "ERROR: systemd-analyze not found" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

failed=0
for entry in "${LIMITS[@]}"; do
    read -r name limit <<<"$entry"
    unit="${name%%+*}"
    root="$work/$name"
    mkdir -p "$root/etc/systemd/system"
    # As in the verify step: ExecStart must exist on this machine, the real path comes from the .deb.
    sed -E 's#^ExecStart=[^ ]+#ExecStart=/bin/true#' "systemd/$unit" >"$root/etc/systemd/system/$unit"
    if [ "$name" != "$unit" ]; then
        mkdir -p "$root/etc/systemd/system/$unit.d"
        cp "systemd/examples/${name#*+}" "$root/etc/systemd/system/$unit.d/"
    fi
    report="$(systemd-analyze security --offline=true --no-pager --root="$root" "$unit" 2>&1)" || {
        echo "$report" >&2
        echo "ERROR: systemd-analyze security failed for $name" >&2
        exit 1
    }
    score="$(sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$report")"
    [ -n "$score" ] || { echo "$report" >&2; echo "ERROR: no exposure score for $name" >&2; exit 1; }
    if awk -v s="$score" -v l="$limit" 'BEGIN { exit !(s > l) }'; then
        echo "$report" | grep '✗' >&2 || true
        echo "ERROR: $name exposure $score is above its limit $limit" >&2
        failed=1
    else
        echo "    $name exposure $score (limit $limit)"
    fi
done
exit "$failed"
