#!/usr/bin/env bash
# CI for the Jetson path: `bash .ci/jetson.sh` from anywhere (CI=true, no stdin). Standalone;
# .ci/run may call it. Idempotent: installed packages, the Rust target and the fetched headers
# are reused.
#   1. cross toolchain (Debian's aarch64 gcc) + the Rust aarch64 target
#   2. TensorRT 11.4 headers from the trtx-sys crate's source -> target/tensorrt-headers/
#      (never committed; TENSORRT_INCLUDE_DIR points there)
#   3. shell scripts and systemd units: bash -n, shellcheck, systemd-analyze verify, and the
#      units' exposure scores (.ci/unit-security.sh, systemd-analyze security --offline=true)
#   4. clippy and the library's unit tests with the tensorrt feature (the shim compiled for real)
#   5. aarch64 cross build + .deb (jetson/package-deb.sh) into target/deb/, and its checks
# Exits non-zero on any failure.
#
# Knobs: CARGO_TARGET_DIR (default target/), PACKD_DEB_FEATURES (features of the .deb build,
# default "tensorrt"), PACKD_CI_SKIP_TENSORRT_CHECKS=1 skips step 4 (e.g. before the feature
# exists), PACKD_CI_SKIP_DEB=1 skips step 5.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd -P)"

# Each step says when it began (seconds since this script started): where CI time goes.
step() { printf '\n==> [%4d s] %s\n' "$SECONDS" "$*"; }
note() { printf '    %s\n' "$*"; }
fail() { echo "ERROR: $*" >&2; exit 1; }

export PATH="${HOME:-/root}/.cargo/bin:/root/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
fi

TRIPLE=aarch64-unknown-linux-gnu
TRTX_CRATE="trtx-sys-0.9.1+rtx1.7"
TRTX_URL="https://static.crates.io/crates/trtx-sys/trtx-sys-0.9.1%2Brtx1.7.crate"
TRTX_SHA256="5480ee056292951daa1bc74532162d6cb75190f091e45d7d97c0c356916ae171"
TRTX_FOLDER="TensorRT-Headers/TRT-Enterprise-11.4"
HEADERS_DIR="$ROOT/target/tensorrt-headers"
DEB_DIR="$ROOT/target/deb"

# --- 1. Cross toolchain -----------------------------------------------------
step "Cross toolchain"
# cmake: turbojpeg-sys cross-builds libjpeg-turbo (NEON) for the aarch64 binaries
PACKAGES=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu
    file shellcheck systemd curl ca-certificates cmake)
missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    note "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
else
    note "already installed: ${PACKAGES[*]}"
fi
note "$(aarch64-linux-gnu-gcc --version | head -1)"
command -v cargo >/dev/null || fail "cargo not on PATH"
note "$(cargo --version)"
if ! rustup target list --installed 2>/dev/null | grep -qx "$TRIPLE"; then
    note "adding Rust target $TRIPLE"
    timeout 600 rustup target add "$TRIPLE"
fi
note "Rust target $TRIPLE installed"

# --- 2. TensorRT 11.4 headers -------------------------------------------------
# Only the headers of trtx-sys's source are used, only to compile our shim; nothing of the crate
# is linked. target/ is git-ignored, and no TensorRT header may be tracked in the repository.
step "TensorRT 11.4 headers ($TRTX_CRATE: $TRTX_FOLDER)"
git check-ignore -q target/tensorrt-headers || fail "target/ is not git-ignored (.gitignore)"
tracked="$(git ls-files | grep -E '(^|/)Nv(Infer|Onnx)[A-Za-z]*\.h$' || true)"
[ -z "$tracked" ] || fail "TensorRT headers are tracked in the repository: $tracked"
TENSORRT_INCLUDE_DIR="$HEADERS_DIR/TRT-Enterprise-11.4"
if [ -f "$TENSORRT_INCLUDE_DIR/NvInferRuntime.h" ] && [ -f "$TENSORRT_INCLUDE_DIR/NvInferVersion.h" ]; then
    note "cached in $TENSORRT_INCLUDE_DIR"
else
    mkdir -p "$HEADERS_DIR"
    tmp="$(mktemp -d "$HEADERS_DIR/.fetch.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    note "downloading $TRTX_URL"
    curl -sSfL --retry 3 --max-time 300 -o "$tmp/crate.tar.gz" "$TRTX_URL"
    echo "$TRTX_SHA256  $tmp/crate.tar.gz" | sha256sum -c --quiet - ||
        fail "sha256 of $TRTX_CRATE.crate is not $TRTX_SHA256"
    tar -xzf "$tmp/crate.tar.gz" -C "$tmp" "$TRTX_CRATE/$TRTX_FOLDER"
    rm -rf "$TENSORRT_INCLUDE_DIR"
    mv "$tmp/$TRTX_CRATE/$TRTX_FOLDER" "$TENSORRT_INCLUDE_DIR"
    rm -rf "$tmp"
    trap - EXIT
    note "extracted to $TENSORRT_INCLUDE_DIR"
fi
export TENSORRT_INCLUDE_DIR
version_of() { sed -n "s/^#define $1 \([0-9]*\).*/\1/p" "$TENSORRT_INCLUDE_DIR/NvInferVersion.h" | head -1; }
note "TENSORRT_INCLUDE_DIR=$TENSORRT_INCLUDE_DIR (TensorRT $(version_of TRT_MAJOR_ENTERPRISE).$(version_of TRT_MINOR_ENTERPRISE).$(version_of TRT_PATCH_ENTERPRISE))"

# --- 3. Scripts and units -------------------------------------------------------
step "Jetson scripts and systemd units"
SCRIPTS=(jetson/build-engines.sh jetson/selftest.sh jetson/package-deb.sh .ci/jetson.sh .ci/unit-security.sh)
for s in "${SCRIPTS[@]}"; do bash -n "$s"; done
shellcheck "${SCRIPTS[@]}"
note "bash -n + shellcheck: ${SCRIPTS[*]}"
for s in jetson/build-engines.sh jetson/selftest.sh jetson/package-deb.sh; do
    "./$s" --help >/dev/null || fail "$s --help failed"
done
# systemd-analyze verify also checks that ExecStart= exists, so verify copies whose commands
# point at /bin/true (the real paths come from the .deb, checked in step 5).
units="$(mktemp -d)"
for u in systemd/packd.service systemd/packd-engines.service; do
    sed -E 's#^ExecStart=[^ ]+#ExecStart=/bin/true#' "$u" >"$units/$(basename "$u")"
done
verify_log="$(mktemp)"
if systemd-analyze verify --man=no "$units/packd-engines.service" "$units/packd.service" >"$verify_log" 2>&1; then
    note "systemd-analyze verify: ok"
else
    cat "$verify_log" >&2
    fail "systemd-analyze verify failed"
fi
rm -rf "$units" "$verify_log"
# No unit may get looser than it is: each exposure score against its limit.
bash .ci/unit-security.sh || fail "a systemd unit's exposure score rose above its limit"

# --- 4. Clippy and unit tests with the tensorrt feature ----------------------------
if [ "${PACKD_CI_SKIP_TENSORRT_CHECKS:-0}" = 1 ]; then
    step "tensorrt feature checks SKIPPED (PACKD_CI_SKIP_TENSORRT_CHECKS=1)"
else
    step "cargo clippy --locked --features tensorrt --all-targets -- -D warnings"
    timeout -k 30s "${PACKD_CI_CLIPPY_TIMEOUT:-40m}" \
        cargo clippy --locked --features tensorrt --all-targets -- -D warnings
    step "cargo test --locked --features tensorrt --lib --test trt_device"
    timeout -k 30s "${PACKD_CI_TEST_TIMEOUT:-30m}" \
        cargo test --locked --features tensorrt --lib --test trt_device
fi

# --- 5. aarch64 cross build and .deb ------------------------------------------------
if [ "${PACKD_CI_SKIP_DEB:-0}" = 1 ]; then
    step "aarch64 .deb SKIPPED (PACKD_CI_SKIP_DEB=1)"
    echo "OK: Jetson checks passed"
    exit 0
fi
DEB_FEATURES="${PACKD_DEB_FEATURES-tensorrt}"
step "aarch64 cross build + .deb (features: ${DEB_FEATURES:-none})"
rm -f "$DEB_DIR"/packd_*_arm64.deb
# CI checks how the package is made and what it holds, not how fast its code runs, so it builds
# the aarch64 tree at opt-level 1, which spends far less time in LLVM than the release profile's 3
# (what `jetson/package-deb.sh` builds by default, and what ships; PACKD_CI_DEB_OPT_LEVEL=3 here).
CARGO_PROFILE_RELEASE_OPT_LEVEL="${PACKD_CI_DEB_OPT_LEVEL:-1}" \
    timeout -k 30s "${PACKD_CI_DEB_TIMEOUT:-60m}" \
    jetson/package-deb.sh --features "$DEB_FEATURES" --out "$DEB_DIR"
shopt -s nullglob
debs=("$DEB_DIR"/packd_*_arm64.deb)
shopt -u nullglob
[ "${#debs[@]}" -eq 1 ] || fail "expected one .deb in $DEB_DIR, found ${#debs[@]}"
DEB="${debs[0]}"

step "Check $(basename "$DEB")"
[ "$(dpkg-deb --field "$DEB" Architecture)" = arm64 ] || fail "Architecture is not arm64"
[ "$(dpkg-deb --field "$DEB" Package)" = packd ] || fail "Package is not packd"
cargo_version="$(awk '/^\[/ { p = ($0 == "[package]") } p && /^version/ { gsub(/.*= *"|".*/, ""); print; exit }' Cargo.toml)"
case "$(dpkg-deb --field "$DEB" Version)" in "$cargo_version"-*) ;; *) fail "Version does not start with Cargo.toml's $cargo_version" ;; esac
depends="$(dpkg-deb --field "$DEB" Depends)"
for d in libc6 libstdc++6 libgcc-s1; do
    case ", $depends," in *", $d"[\ ,]*) ;; *) fail "Depends lacks $d: $depends" ;; esac
done
case "$(dpkg-deb --field "$DEB" Recommends)" in *mosquitto*) ;; *) fail "Recommends lacks mosquitto" ;; esac
note "control: $(dpkg-deb --field "$DEB" Package Version Architecture Depends Recommends | tr '\n' ' ')"
extract="$(mktemp -d)"
dpkg-deb -x "$DEB" "$extract"
dpkg-deb -e "$DEB" "$extract/DEBIAN"
grep -qx /etc/packd/packd.toml "$extract/DEBIAN/conffiles" || fail "/etc/packd/packd.toml is not a conffile"
for f in usr/bin/packd usr/bin/packctl lib/systemd/system/packd.service lib/systemd/system/packd-engines.service \
    usr/lib/packd/build-engines.sh usr/lib/packd/selftest.sh etc/packd/packd.toml usr/share/doc/packd/README.md \
    usr/share/packd/bundles/packd-default/manifest.toml usr/share/packd/bundles/packd-default/model.onnx \
    DEBIAN/postinst DEBIAN/prerm DEBIAN/postrm; do
    [ -e "$extract/$f" ] || fail "/$f missing from the .deb"
done
for f in usr/bin/packd usr/bin/packctl usr/lib/packd/build-engines.sh usr/lib/packd/selftest.sh DEBIAN/postinst; do
    [ -x "$extract/$f" ] || fail "/$f is not executable"
done
for bin in packd packctl; do
    desc="$(file -b "$extract/usr/bin/$bin")"
    case "$desc" in *"ARM aarch64"*) ;; *) fail "$bin is not aarch64: $desc" ;; esac
    needed="$(aarch64-linux-gnu-readelf -d "$extract/usr/bin/$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    case "$needed" in *libnvinfer*|*libcudart*) fail "$bin links TensorRT/CUDA: $needed" ;; esac
    note "$bin: ${desc%%,*}; NEEDED: $needed"
done
# Test hooks (fault injection, crash points) live behind the test-util feature; a shipped binary
# must not carry them, so a drop-in environment line can never wedge or kill an appliance.
for bin in packd packctl; do
    for hook in TEST_PACKD_FAULT CRASH_PACKD_AT_STEP TEST_PACKD_REQUEST_CHANNEL; do
        if grep -aq "$hook" "$extract/usr/bin/$bin"; then fail "$bin contains the test hook $hook"; fi
    done
done
note "no test hooks (TEST_PACKD_FAULT, CRASH_PACKD_AT_STEP, TEST_PACKD_REQUEST_CHANNEL) in the shipped binaries"
case ",$DEB_FEATURES," in
    *,tensorrt,*)
        # The shim is in the binary, and it names the library it dlopen()s.
        grep -aq 'libnvinfer.so' "$extract/usr/bin/packd" || fail "packd has no 'libnvinfer.so' string: shim not compiled in?"
        note "packd carries the TensorRT shim (dlopen of libnvinfer.so.*)"
        ;;
esac
if systemd-analyze verify --man=no --root="$extract" /lib/systemd/system/packd-engines.service \
    /lib/systemd/system/packd.service >/dev/null 2>&1; then
    note "units verify against the .deb's files"
else
    note "systemd-analyze verify --root not usable here; units were verified in step 3"
fi
rm -rf "$extract"
note "$(basename "$DEB"): $(stat -c %s "$DEB") bytes"

echo "OK: Jetson checks passed"
