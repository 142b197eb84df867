#!/usr/bin/env bash
# Cross-builds packd and packctl for aarch64 (Jetson, Ubuntu 22.04 / JetPack 6) with Debian's
# cross toolchain and packages them as a .deb with dpkg-deb, then checks the result.
#
#   jetson/package-deb.sh [--features LIST] [--out DIR] [--revision N] [--no-build] [--no-strip]
#
# Needs: apt-get install -y gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross
#        binutils-aarch64-linux-gnu file cmake; rustup target add aarch64-unknown-linux-gnu.
# With the `tensorrt` feature (the default) TENSORRT_INCLUDE_DIR must name TensorRT's headers
# (.ci/jetson.sh fetches the 11.4 set). TensorRT is dlopen()ed at run time, so the binaries must
# not link libnvinfer; this script refuses a build that does.
# Cargo's target dir is $CARGO_TARGET_DIR (default: target/ in the repository).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PROG="$(basename "$0")"
TRIPLE=aarch64-unknown-linux-gnu
# On an aarch64 host (e.g. the Orin itself) the native toolchain is the "cross" one.
if [ "$(uname -m)" = aarch64 ] && ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1; then
    CROSS_PREFIX=""
else
    CROSS_PREFIX="aarch64-linux-gnu-"
fi
# JetPack 6 is Ubuntu 22.04: glibc 2.35. A binary that needs newer symbols would not start there.
MAX_GLIBC="${PACKD_DEB_MAX_GLIBC:-2.35}"

usage() {
    cat <<EOF
Usage: $PROG [options]

  --features LIST   cargo features, comma-separated (default: tensorrt; "" for none)
  --out DIR         where the .deb goes (default: target/deb)
  --revision N      Debian revision appended to Cargo.toml's version (default: 1)
  --no-build        package the binaries already in \$CARGO_TARGET_DIR/$TRIPLE/release
  --no-strip        keep debug info in the packaged binaries
  -h, --help        this help
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

FEATURES="tensorrt"
OUT="$ROOT/target/deb"
REVISION=1
BUILD=1
STRIP=1
while [ "$#" -gt 0 ]; do
    case "$1" in
        --features) [ "$#" -ge 2 ] || die "--features needs a value (\"\" for none)"; FEATURES="$2"; shift 2 ;;
        --features=*) FEATURES="${1#*=}"; shift ;;
        --out) [ "$#" -ge 2 ] || die "--out needs a value"; OUT="$2"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --revision) [ "$#" -ge 2 ] || die "--revision needs a value"; REVISION="$2"; shift 2 ;;
        --revision=*) REVISION="${1#*=}"; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-strip) STRIP=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) printf '%s: unknown argument: %s (see --help)\n' "$PROG" "$1" >&2; exit 2 ;;
    esac
done
[[ "$REVISION" =~ ^[0-9A-Za-z.+~]+$ ]] || die "bad --revision '$REVISION'"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd -P)"

cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# --- Version -------------------------------------------------------------------
VERSION="$(awk '
    /^\[/ { in_package = ($0 == "[package]"); next }
    in_package && /^version[[:space:]]*=/ { v = $0; sub(/^[^"]*"/, "", v); sub(/".*/, "", v); print v; exit }
' Cargo.toml)"
[ -n "$VERSION" ] || die "no version in Cargo.toml's [package]"
DEB_VERSION="$VERSION-$REVISION"

# --- Toolchain -------------------------------------------------------------------
missing=()
for tool in "${CROSS_PREFIX}gcc" "${CROSS_PREFIX}g++" "${CROSS_PREFIX}ar" "${CROSS_PREFIX}strip" "${CROSS_PREFIX}readelf" dpkg-deb file; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    die "missing ${missing[*]}: apt-get install -y gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu file"
fi

if [ "$BUILD" -eq 1 ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo not on PATH"
    if command -v rustup >/dev/null 2>&1; then
        rustup target list --installed | grep -qx "$TRIPLE" ||
            die "Rust target $TRIPLE not installed: rustup target add $TRIPLE"
    fi
    case ",$FEATURES," in
        *,tensorrt,*)
            [ -n "${TENSORRT_INCLUDE_DIR:-}" ] ||
                die "the tensorrt feature needs TENSORRT_INCLUDE_DIR (TensorRT headers; .ci/jetson.sh fetches them)"
            [ -f "$TENSORRT_INCLUDE_DIR/NvInferRuntime.h" ] ||
                die "TENSORRT_INCLUDE_DIR=$TENSORRT_INCLUDE_DIR has no NvInferRuntime.h"
            ;;
    esac
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="${CROSS_PREFIX}gcc"
    export CC_aarch64_unknown_linux_gnu="${CROSS_PREFIX}gcc"
    export CXX_aarch64_unknown_linux_gnu="${CROSS_PREFIX}g++"
    export AR_aarch64_unknown_linux_gnu="${CROSS_PREFIX}ar"
    # The package ships stripped binaries: skip the release profile's debug info (faster build).
    export CARGO_PROFILE_RELEASE_DEBUG="${CARGO_PROFILE_RELEASE_DEBUG:-0}"
    case ",$FEATURES," in
        *,test-util,*) die "test-util is for tests only: a package must not carry fault injection or crash points" ;;
    esac
    cargo_args=(build --locked --release --target "$TRIPLE" --bin packd --bin packctl)
    [ -z "$FEATURES" ] || cargo_args+=(--features "$FEATURES")
    say "cargo ${cargo_args[*]} (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    started=$SECONDS
    cargo "${cargo_args[@]}"
    say "cross build took $((SECONDS - started))s"
fi
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"
for bin in packd packctl; do
    [ -x "$BIN_DIR/$bin" ] || die "$BIN_DIR/$bin not built"
done

# --- Stage -----------------------------------------------------------------------
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/packd-deb.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
PKG="$STAGE/packd_${DEB_VERSION}_arm64"
mkdir -p "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/usr/lib/packd" \
    "$PKG/usr/share/packd/bundles" "$PKG/etc/packd" "$PKG/usr/share/doc/packd"

for bin in packd packctl; do
    if [ "$STRIP" -eq 1 ]; then
        "${CROSS_PREFIX}strip" --strip-all -o "$PKG/usr/bin/$bin" "$BIN_DIR/$bin"
    else
        cp "$BIN_DIR/$bin" "$PKG/usr/bin/$bin"
    fi
done
cp systemd/packd.service systemd/packd-engines.service "$PKG/lib/systemd/system/"
cp jetson/build-engines.sh jetson/selftest.sh "$PKG/usr/lib/packd/"
# The shipped default bundle, without engines (they are built per device).
mkdir "$PKG/usr/share/packd/bundles/packd-default"
tar -C engines/packd-default --exclude=./engines -cf - . | tar -C "$PKG/usr/share/packd/bundles/packd-default" -xf -
cp examples/packd.toml "$PKG/etc/packd/packd.toml"
cp README.md "$PKG/usr/share/doc/packd/README.md"
cp jetson/README.md "$PKG/usr/share/doc/packd/JETSON.md"
# Drop-ins for packd.service (a remote broker, a CPU-only machine); the unit names them.
mkdir "$PKG/usr/share/doc/packd/systemd"
cp systemd/examples/*.conf "$PKG/usr/share/doc/packd/systemd/"
cat >"$PKG/usr/share/doc/packd/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: packd

Files: *
License: Apache-2.0
 On Debian and Ubuntu systems the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF

find "$PKG" -type d -exec chmod 0755 {} +
find "$PKG" -type f -exec chmod 0644 {} +
chmod 0755 "$PKG/usr/bin/packd" "$PKG/usr/bin/packctl" "$PKG/usr/lib/packd/build-engines.sh" "$PKG/usr/lib/packd/selftest.sh"

# The seed bundle must be exactly what its manifest lists (packd refuses unlisted files).
seed="$PKG/usr/share/packd/bundles/packd-default"
awk '
    /^\[\[files\]\]/ { in_files = 1; next }
    /^\[/ { in_files = 0 }
    in_files && /^path[[:space:]]*=/ { p = $0; sub(/^[^"]*"/, "", p); sub(/".*/, "", p) }
    in_files && /^sha256[[:space:]]*=/ { h = $0; sub(/^[^"]*"/, "", h); sub(/".*/, "", h); print h "  " p }
' "$seed/manifest.toml" >"$STAGE/seed.sha256"
(cd "$seed" && sha256sum --quiet -c "$STAGE/seed.sha256") || die "the packd-default bundle does not match its manifest"
listed="$(cut -c67- "$STAGE/seed.sha256" | sort)"
present="$(cd "$seed" && find . -type f ! -name manifest.toml | sed 's#^\./##' | sort)"
[ "$listed" = "$present" ] || die "the packd-default bundle has files its manifest does not list (or lacks listed ones)"

# --- Binary checks ---------------------------------------------------------------
max_version() { # $1 = prefix (GLIBC | GLIBCXX), files... -> highest version needed
    local prefix="$1"; shift
    for f in "$@"; do "${CROSS_PREFIX}readelf" -W --dyn-syms "$f"; done |
        { grep -o "@${prefix}_[0-9][0-9.]*" || true; } | sed "s/^@${prefix}_//" | sort -V | tail -1
}
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]; }
for bin in packd packctl; do
    f="$PKG/usr/bin/$bin"
    desc="$(file -b "$f")"
    case "$desc" in *"ARM aarch64"*) ;; *) die "$bin is not an aarch64 binary: $desc" ;; esac
    needed="$("${CROSS_PREFIX}readelf" -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
    say "$bin: $desc"
    say "$bin: NEEDED: $needed"
    case " $needed " in
        *libnvinfer*|*libcudart*|*" libcuda.so"*|*libnvonnxparser*)
            die "$bin links a TensorRT/CUDA library ($needed): TensorRT must be dlopen()ed" ;;
    esac
done
GLIBC_NEEDED="$(max_version GLIBC "$PKG/usr/bin/packd" "$PKG/usr/bin/packctl")"
GLIBCXX_NEEDED="$(max_version GLIBCXX "$PKG/usr/bin/packd" "$PKG/usr/bin/packctl")"
say "highest symbol versions needed: GLIBC_${GLIBC_NEEDED:-none} GLIBCXX_${GLIBCXX_NEEDED:-none}"
[ -n "$GLIBC_NEEDED" ] || die "no GLIBC symbol versions found: not a glibc binary?"
version_le "$GLIBC_NEEDED" "$MAX_GLIBC" ||
    die "the binaries need GLIBC_$GLIBC_NEEDED, newer than JetPack 6's $MAX_GLIBC (PACKD_DEB_MAX_GLIBC overrides)"

# --- Control files ---------------------------------------------------------------
# Which TensorRT the shim was compiled for: it loads libnvinfer.so.<that major> only, so a .deb
# built against the 11.x headers serves TensorRT on JetPack 7, one built against 10.x on JetPack 6.
TRT_HEADERS="none (CPU only)"
case ",$FEATURES," in
    *,tensorrt,*)
        if [ -n "${TENSORRT_INCLUDE_DIR:-}" ] && [ -f "$TENSORRT_INCLUDE_DIR/NvInferVersion.h" ]; then
            trt_define() {
                sed -n -E "s/^#define (NV_TENSORRT|TRT)_$1(_ENTERPRISE)? ([0-9]+).*/\3/p" \
                    "$TENSORRT_INCLUDE_DIR/NvInferVersion.h" | head -1
            }
            TRT_HEADERS="$(trt_define MAJOR).$(trt_define MINOR).$(trt_define PATCH)"
        else
            TRT_HEADERS="unknown"
        fi
        ;;
esac
say "TensorRT headers compiled in: $TRT_HEADERS"
if [ "$TRT_HEADERS" = "none (CPU only)" ]; then
    TRT_LINE="Built without the TensorRT backend: briefs run on the CPU."
else
    TRT_LINE="TensorRT backend compiled against the TensorRT $TRT_HEADERS headers: it loads libnvinfer.so.${TRT_HEADERS%%.*} (JetPack 6: 10.x, JetPack 7: 11.x)."
fi
INSTALLED_SIZE="$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)"
cat >"$PKG/DEBIAN/control" <<EOF
Package: packd
Version: $DEB_VERSION
Architecture: arm64
Maintainer: packd developers <packd@localhost>
Installed-Size: $INSTALLED_SIZE
Depends: libc6 (>= $GLIBC_NEEDED), libgcc-s1, libstdc++6, passwd
Recommends: mosquitto
Suggests: nvidia-l4t-dla-compiler
Section: net
Priority: optional
X-Packd-TensorRT-Headers: $TRT_HEADERS
Description: packaging design briefs over MQTT (edge appliance service)
 packd answers packaging design briefs (product, audience, mood, palette,
 keywords, reference image) with style, palette, font-pairing and layout
 suggestions over MQTT v5. On an NVIDIA Jetson Orin it runs its model as
 TensorRT INT8 engines on the DLA cores and the GPU (TensorRT is loaded at
 run time; install JetPack's TensorRT), elsewhere on the CPU.
 .
 Ships packd, packctl, the systemd units, the default model bundle and the
 Jetson engine build and self-test scripts in /usr/lib/packd.
 .
 $TRT_LINE
EOF
echo /etc/packd/packd.toml >"$PKG/DEBIAN/conffiles"

cat >"$PKG/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e

if [ "$1" = configure ]; then
    getent group packd >/dev/null || groupadd --system packd
    # TensorRT/DLA device nodes on a Jetson belong to the video group.
    getent group video >/dev/null || groupadd --system video
    if ! getent passwd packd >/dev/null; then
        useradd --system --gid packd --groups video --home-dir /var/lib/packd --no-create-home \
            --shell /usr/sbin/nologin --comment "packd design-brief service" packd
    elif ! id -nG packd | tr ' ' '\n' | grep -qx video; then
        usermod -a -G video packd
    fi
    install -d -o packd -g packd -m 0750 /var/lib/packd /var/lib/packd/bundles
    if [ -z "$2" ]; then
        # First install: the config may hold MQTT credentials.
        chgrp packd /etc/packd/packd.toml
        chmod 0640 /etc/packd/packd.toml
    fi

    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper unmask packd.service >/dev/null || true
        if deb-systemd-helper --quiet was-enabled packd.service; then
            deb-systemd-helper enable packd.service >/dev/null || true
        else
            deb-systemd-helper update-state packd.service >/dev/null || true
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        if [ -n "$2" ]; then
            # Upgrade: restart a running packd on the new binary.
            systemctl try-restart packd.service >/dev/null || true
        else
            echo "packd: enabled; it starts at the next boot (first start builds TensorRT engines on a Jetson)."
            echo "packd: to start now: sudo systemctl start packd   (see /usr/share/doc/packd/JETSON.md)"
        fi
    fi
fi
exit 0
EOF

cat >"$PKG/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop packd.service packd-engines.service >/dev/null 2>&1 || true
fi
exit 0
EOF

cat >"$PKG/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = remove ] && command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper mask packd.service >/dev/null || true
fi
if [ "$1" = purge ]; then
    if command -v deb-systemd-helper >/dev/null 2>&1; then
        deb-systemd-helper purge packd.service >/dev/null || true
        deb-systemd-helper unmask packd.service >/dev/null || true
    fi
    # Installed bundles, built engines and build logs. The packd user stays (Debian policy).
    rm -rf /var/lib/packd
    rmdir /etc/packd 2>/dev/null || true
fi
exit 0
EOF
chmod 0755 "$PKG/DEBIAN/postinst" "$PKG/DEBIAN/prerm" "$PKG/DEBIAN/postrm"
chmod 0644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/conffiles"
for script in postinst prerm postrm; do sh -n "$PKG/DEBIAN/$script"; done

# --- Build and show ----------------------------------------------------------------
DEB="$OUT/packd_${DEB_VERSION}_arm64.deb"
dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
say "built $DEB ($(stat -c %s "$DEB") bytes)"
dpkg-deb --info "$DEB"
dpkg-deb --contents "$DEB"
