#!/usr/bin/env bash
# Builds the TensorRT engines of a packd bundle on a Jetson Orin (DLA0, DLA1, GPU) with trtexec
# and registers each one in the bundle's manifest (`packd engine register`).
# Installed as /usr/lib/packd/build-engines.sh; run by packd-engines.service with --missing-only.
#
# trtexec flags, by TensorRT major version (sources checked when this was written):
#   TensorRT 10.x (JetPack 6.1-6.2.x, TensorRT 10.3): implicit INT8 from the FP32 model plus the
#     bundle's calibration cache: --onnx=model.onnx --calib=model.calib.cache --int8 --fp16
#     ("--calib=<file>  Read INT8 calibration cache file"; --int8/--fp16 "in addition to fp32":
#     trtexec --help of TensorRT 8.6-10.x, NVIDIA/TensorRT samples/common/sampleOptions.cpp).
#     With both --int8 and --fp16, layers without a usable INT8 kernel fall back to FP16.
#   TensorRT 11.x (JetPack >= 7.2.2, TensorRT 11.4.1): "TensorRT 11.x removes the --int8 and
#     --calib flags" and "all precision flags (--fp16, --int8, --bf16, --fp8, --int4, --best)";
#     networks are always strongly typed, so precision comes from the model: we build the
#     explicit Q/DQ model (model.int8.onnx) with no precision flag.
#     (docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/tensorrt-10x-to-11x-trtexec.html;
#     DLA on Orin with 11.4.1 only on AGX Orin under JetPack >= 7.2.2:
#     docs.nvidia.com/deeplearning/tensorrt/11.4.1/inference-library/work-with-dla.html)
#   Both: --useDLACore=N --allowGPUFallback for DLA targets ("./trtexec --onnx=... --useDLACore=0
#     --allowGPUFallback", TensorRT 10.x and 11.4 "Building and Launching the Loadable" pages),
#     --saveEngine, --timingCacheFile ("Save/load the serialized global timing cache"),
#     --profilingVerbosity=detailed + --exportLayerInfo=<file> (layer report; "Write the layer
#     information of the engine in a json file"), --skipInference ("Exit after the engine has been
#     built"), --memPoolSize=workspace:<MiB> (replaces --workspace since TensorRT 10.x:
#     docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/tensorrt-8x-to-10x-trtexec.html).
#   Batch profile, when the manifest declares [model] max_batch (the model's first dimension is
#     then dynamic): --minShapes=spec --optShapes=spec --maxShapes=spec ("Build with dynamic shapes
#     using a profile with the min/opt/max shapes provided"; spec "input0:1x3x256x256,input1:..."),
#     spelled so in trtexec's help from 10.0 to 11.1 (NVIDIA/TensorRT samples/common/
#     sampleOptions.cpp; the 10.x-to-11.x trtexec migration page removes none of them). DLA engines
#     are static (min = opt = max = batch 1: DLA takes no dynamic shapes); the GPU engine spans
#     1..max_batch, tuned for max_batch. TensorRT 10 INT8 adds --optShapesCalib at batch 1
#     (10.x help: "Calibrate with dynamic shapes using a profile with the opt shapes provided";
#     NvInfer.h: a calibration profile "must be set if int8 calibration is used to set scales for
#     a network with runtime dimensions"; 11.x has no calibration). trtexec refuses explicit shapes
#     for a static model ("Static model does not take explicit shapes"), so a manifest without
#     max_batch (a batch-1 model) gets none.
#
# Verified here: bash -n and shellcheck, plus runs against stand-in trtexec/packd programs
# (tests/build_engines.rs, which checks the trtexec command lines, shape flags included).
# It has not run on an Orin; jetson/README.md lists the commands that prove it on a device.
set -euo pipefail

PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $PROG [options]

Build TensorRT engines for a packd bundle and register them in its manifest.

Options:
  --bundle DIR               bundle directory (default: \`packd active-bundle\`)
  --config FILE              packd config used to find the active bundle
                             (default: /etc/packd/packd.toml when it exists)
  --targets "LIST"           targets to build, from dla0 dla1 gpu (default: "dla0 dla1 gpu")
  --missing-only             build only targets whose engine is unregistered, missing, fails its
                             hash, or was built by another TensorRT version
  --trtexec PATH             trtexec to use (default: \$TRTEXEC, trtexec on PATH, then
                             /usr/src/tensorrt/bin/trtexec)
  --packd PATH               packd binary (default: \$PACKD, packd on PATH, then /usr/bin/packd)
  --precision int8|fp16      int8 (INT8 with FP16 fallback, the default) or fp16
  --onnx FILE                model to build instead of the bundle's (TensorRT 11.x fp16 needs a
                             strongly typed FP16 model, e.g. from ModelOpt AutoCast); it must
                             have the bundle's inputs, batch first
  --compute-capability X.Y   override the detected compute capability (Orin: 8.7)
  --dla-cores N              override the detected number of DLA cores
  --tensorrt X.Y.Z           override the detected TensorRT version (must match trtexec's)
  --cuda X.Y                 override the detected CUDA version
  --workspace MIB            builder workspace pool in MiB (default: 512)
  --log-dir DIR              where trtexec build logs go (default: \$STATE_DIRECTORY/engine-builds
                             under systemd, else /var/lib/packd/engine-builds when writable,
                             else ~/.cache/packd/engine-builds)
  --dry-run                  print what would be built and the trtexec commands, build nothing
  -h, --help                 this help

Engines are written to <bundle>/engines/model.<target>.plan with a shared timing cache
(engines/timing.cache) and a layer report per engine (engines/model.<target>.layers.json).
When the manifest declares [model] max_batch = N, the GPU engine takes batches of 1..N briefs
and the DLA engines one brief (DLA needs static shapes); input shapes come from the manifest.
Exit status: 0 when every requested target was built, skipped as up to date, or skipped because
the device has no such DLA core; 1 when any build or registration failed; 2 on bad usage.
EOF
}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_error() { printf '%s: %s (see --help)\n' "$PROG" "$*" >&2; exit 2; }

# --- Arguments ---------------------------------------------------------------
BUNDLE=""
CONFIG=""
TARGETS="dla0 dla1 gpu"
MISSING_ONLY=0
TRTEXEC="${TRTEXEC:-}"
PACKD="${PACKD:-}"
PRECISION="int8"
ONNX_OVERRIDE=""
CC_OVERRIDE=""
DLA_OVERRIDE=""
TRT_OVERRIDE=""
CUDA_OVERRIDE=""
WORKSPACE_MIB=512
LOG_DIR=""
DRY_RUN=0

need_value() { if [ "$#" -lt 2 ] || [ -z "$2" ]; then usage_error "$1 needs a value"; fi; }
while [ "$#" -gt 0 ]; do
    case "$1" in
        --bundle) need_value "$@"; BUNDLE="$2"; shift 2 ;;
        --bundle=*) BUNDLE="${1#*=}"; shift ;;
        --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
        --config=*) CONFIG="${1#*=}"; shift ;;
        --targets) need_value "$@"; TARGETS="$2"; shift 2 ;;
        --targets=*) TARGETS="${1#*=}"; shift ;;
        --missing-only) MISSING_ONLY=1; shift ;;
        --trtexec) need_value "$@"; TRTEXEC="$2"; shift 2 ;;
        --trtexec=*) TRTEXEC="${1#*=}"; shift ;;
        --packd) need_value "$@"; PACKD="$2"; shift 2 ;;
        --packd=*) PACKD="${1#*=}"; shift ;;
        --precision) need_value "$@"; PRECISION="$2"; shift 2 ;;
        --precision=*) PRECISION="${1#*=}"; shift ;;
        --onnx) need_value "$@"; ONNX_OVERRIDE="$2"; shift 2 ;;
        --onnx=*) ONNX_OVERRIDE="${1#*=}"; shift ;;
        --compute-capability) need_value "$@"; CC_OVERRIDE="$2"; shift 2 ;;
        --compute-capability=*) CC_OVERRIDE="${1#*=}"; shift ;;
        --dla-cores) need_value "$@"; DLA_OVERRIDE="$2"; shift 2 ;;
        --dla-cores=*) DLA_OVERRIDE="${1#*=}"; shift ;;
        --tensorrt) need_value "$@"; TRT_OVERRIDE="$2"; shift 2 ;;
        --tensorrt=*) TRT_OVERRIDE="${1#*=}"; shift ;;
        --cuda) need_value "$@"; CUDA_OVERRIDE="$2"; shift 2 ;;
        --cuda=*) CUDA_OVERRIDE="${1#*=}"; shift ;;
        --workspace) need_value "$@"; WORKSPACE_MIB="$2"; shift 2 ;;
        --workspace=*) WORKSPACE_MIB="${1#*=}"; shift ;;
        --log-dir) need_value "$@"; LOG_DIR="$2"; shift 2 ;;
        --log-dir=*) LOG_DIR="${1#*=}"; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage_error "unknown argument: $1" ;;
    esac
done

case "$PRECISION" in int8|fp16) ;; *) usage_error "--precision must be int8 or fp16, not '$PRECISION'" ;; esac
[[ "$WORKSPACE_MIB" =~ ^[0-9]+$ ]] || usage_error "--workspace takes a whole number of MiB"
[ -z "$CC_OVERRIDE" ] || [[ "$CC_OVERRIDE" =~ ^[0-9]+\.[0-9]+$ ]] || usage_error "--compute-capability takes X.Y"
[ -z "$DLA_OVERRIDE" ] || [[ "$DLA_OVERRIDE" =~ ^[0-9]+$ ]] || usage_error "--dla-cores takes a number"
[ -z "$CUDA_OVERRIDE" ] || [[ "$CUDA_OVERRIDE" =~ ^[0-9]+\.[0-9]+$ ]] || usage_error "--cuda takes X.Y"
[ -z "$TRT_OVERRIDE" ] || [[ "$TRT_OVERRIDE" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || usage_error "--tensorrt takes X.Y.Z"
read -r -a TARGET_LIST <<<"$TARGETS"
[ "${#TARGET_LIST[@]}" -gt 0 ] || usage_error "--targets is empty"
for t in "${TARGET_LIST[@]}"; do
    case "$t" in dla0|dla1|gpu) ;; *) usage_error "unknown target '$t' (targets: dla0 dla1 gpu)" ;; esac
done

# --- Tools -------------------------------------------------------------------
if [ -z "$PACKD" ]; then
    PACKD="$(command -v packd || true)"
    [ -n "$PACKD" ] || PACKD=/usr/bin/packd
fi
[ -x "$PACKD" ] || die "packd not found at $PACKD (install the packd .deb, or pass --packd PATH)"

if [ -z "$TRTEXEC" ]; then
    TRTEXEC="$(command -v trtexec || true)"
    [ -n "$TRTEXEC" ] || TRTEXEC=/usr/src/tensorrt/bin/trtexec
fi
[ -x "$TRTEXEC" ] || die "trtexec not found at $TRTEXEC. On JetPack it is /usr/src/tensorrt/bin/trtexec from the
  tensorrt / libnvinfer-bin packages (sudo apt-get install nvidia-tensorrt, or the whole nvidia-jetpack);
  or pass --trtexec PATH"

if [ -z "$CONFIG" ] && [ -f /etc/packd/packd.toml ]; then CONFIG=/etc/packd/packd.toml; fi
CONFIG_ARGS=()
[ -z "$CONFIG" ] || CONFIG_ARGS=(--config "$CONFIG")

# --- Bundle ------------------------------------------------------------------
if [ -z "$BUNDLE" ]; then
    if ! BUNDLE="$("$PACKD" active-bundle "${CONFIG_ARGS[@]}")" || [ -z "$BUNDLE" ]; then
        # A fresh appliance has no active bundle until packd seeds its bundle dir.
        if [ "$MISSING_ONLY" -eq 1 ]; then
            say "no active bundle (\`packd active-bundle${CONFIG:+ --config $CONFIG}\` failed): nothing to build yet"
            exit 0
        fi
        die "\`packd active-bundle${CONFIG:+ --config $CONFIG}\` failed; pass --bundle DIR"
    fi
fi
[ -d "$BUNDLE" ] || die "bundle directory $BUNDLE does not exist"
BUNDLE="$(cd "$BUNDLE" && pwd -P)"
MANIFEST="$BUNDLE/manifest.toml"
[ -f "$MANIFEST" ] || die "$BUNDLE has no manifest.toml: not a packd bundle"

# `key = "value"` from the [model] table (python 3.10 on JetPack 6 has no tomllib; the manifest is
# written by our own tools in this simple form).
manifest_model_value() { # $1 = key
    awk -v key="$1" '
        /^[[:space:]]*\[/ { in_model = ($0 ~ /^[[:space:]]*\[model\][[:space:]]*$/); next }
        in_model {
            line = $0; sub(/#.*/, "", line)
            if (line ~ "^[[:space:]]*" key "[[:space:]]*=") {
                sub(/^[^=]*=[[:space:]]*"/, "", line); sub(/".*$/, "", line); print line; exit
            }
        }' "$MANIFEST"
}
# A bare `key = 123` from the [model] table, or nothing when absent.
manifest_model_number() { # $1 = key
    awk -v key="$1" '
        /^[[:space:]]*\[/ { in_model = ($0 ~ /^[[:space:]]*\[model\][[:space:]]*$/); next }
        in_model {
            line = $0; sub(/#.*/, "", line)
            if (line ~ "^[[:space:]]*" key "[[:space:]]*=") {
                sub(/^[^=]*=[[:space:]]*/, "", line); sub(/[[:space:]]*$/, "", line); print line; exit
            }
        }' "$MANIFEST"
}
# "name d1,d2,..." for each [[model.inputs]] table, in manifest order.
manifest_inputs() {
    awk '
        /^[[:space:]]*\[/ { in_input = ($0 ~ /^[[:space:]]*\[\[model\.inputs\]\][[:space:]]*$/); n += in_input; next }
        in_input {
            line = $0; sub(/#.*/, "", line)
            if (line ~ /^[[:space:]]*name[[:space:]]*=/) {
                sub(/^[^=]*=[[:space:]]*"/, "", line); sub(/".*$/, "", line); name[n] = line
            } else if (line ~ /^[[:space:]]*shape[[:space:]]*=/) {
                sub(/^[^[]*\[/, "", line); sub(/\].*$/, "", line); gsub(/[[:space:]]/, "", line); shape[n] = line
            }
        }
        END { for (i = 1; i <= n; i++) print name[i], shape[i] }' "$MANIFEST"
}
FP32_MODEL="$(manifest_model_value fp32)"; FP32_MODEL="${FP32_MODEL:-model.onnx}"
INT8_MODEL="$(manifest_model_value int8)"; INT8_MODEL="${INT8_MODEL:-model.int8.onnx}"
CALIB_CACHE="$(manifest_model_value calibration_cache)"; CALIB_CACHE="${CALIB_CACHE:-model.calib.cache}"
ENGINE_DIR="$BUNDLE/engines"

# The batch profile: max_batch present means the model's first dimension is dynamic.
MAX_BATCH="$(manifest_model_number max_batch)"
BATCH_PROFILE=0
if [ -n "$MAX_BATCH" ]; then
    if ! [[ "$MAX_BATCH" =~ ^[0-9]{1,2}$ ]] || [ "$MAX_BATCH" -lt 1 ] || [ "$MAX_BATCH" -gt 64 ]; then
        die "$MANIFEST: [model] max_batch = $MAX_BATCH is not a whole number in 1..64"
    fi
    BATCH_PROFILE=1
else
    MAX_BATCH=1
fi
# Each input's name and its shape without the batch dimension ("196", "3x16x12"); only a batch
# profile needs them.
INPUT_NAMES=()
INPUT_ROWS=()
if [ "$BATCH_PROFILE" -eq 1 ]; then
    while read -r input_name input_shape; do
        [ -n "$input_name" ] || continue
        # trtexec's shape spec separates inputs with ',' and names from shapes with ':'.
        [[ "$input_name" =~ ^[A-Za-z0-9_./-]+$ ]] ||
            die "$MANIFEST: input name '$input_name' cannot go into a trtexec shape spec"
        [[ "$input_shape" =~ ^[0-9]+(,[0-9]+)+$ ]] ||
            die "$MANIFEST: input '$input_name' has shape [$input_shape]; expected the batch first, then at least one dimension"
        INPUT_NAMES+=("$input_name")
        input_row="${input_shape#*,}"
        INPUT_ROWS+=("${input_row//,/x}")
    done < <(manifest_inputs)
    [ "${#INPUT_NAMES[@]}" -gt 0 ] || die "$MANIFEST declares max_batch but no [[model.inputs]]"
fi

shape_spec() { # $1 batch -> name:BATCHxROW,...
    local i spec=""
    for i in "${!INPUT_NAMES[@]}"; do spec+="${spec:+,}${INPUT_NAMES[$i]}:${1}x${INPUT_ROWS[$i]}"; done
    printf '%s\n' "$spec"
}
batch_range() { # $1 target -> "1" or "1..N"
    if [ "$1" = gpu ] && [ "$MAX_BATCH" -gt 1 ]; then echo "1..$MAX_BATCH"; else echo 1; fi
}

# --- Device facts --------------------------------------------------------------
# TensorRT version: trtexec prints "[TensorRT v100300]" (major*10000 + minor*100 + patch; 8.x used
# major*1000 + ...), which is the library that actually builds; dpkg's libnvinferN is the fallback.
trt_version_from_text() { # stdin: trtexec output -> X.Y.Z
    local n
    n="$(grep -o -m1 '\[TensorRT v[0-9]\+\]' | grep -o '[0-9]\+' || true)"
    [ -n "$n" ] || return 0
    if [ "$n" -ge 100000 ]; then
        printf '%d.%d.%d\n' $((n / 10000)) $((n / 100 % 100)) $((n % 100))
    else
        printf '%d.%d.%d\n' $((n / 1000)) $((n / 100 % 10)) $((n % 100))
    fi
}
trt_version_from_dpkg() {
    command -v dpkg-query >/dev/null 2>&1 || return 0
    dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\n' 'libnvinfer[0-9]*' 2>/dev/null |
        awk '$1 == "ii" && $2 ~ /^libnvinfer[0-9]+$/ { print $3 }' |
        sed -n 's/^\([0-9]\+\.[0-9]\+\.[0-9]\+\).*/\1/p' | sort -V | tail -1
}
detect_tensorrt() {
    local from_trtexec from_dpkg
    from_trtexec="$("$TRTEXEC" --help 2>&1 | head -20 | trt_version_from_text || true)"
    from_dpkg="$(trt_version_from_dpkg || true)"
    if [ -n "$TRT_OVERRIDE" ]; then
        if [ -n "$from_trtexec" ] && [ "$from_trtexec" != "$TRT_OVERRIDE" ]; then
            die "--tensorrt $TRT_OVERRIDE, but $TRTEXEC is TensorRT $from_trtexec"
        fi
        echo "$TRT_OVERRIDE"
    elif [ -n "$from_trtexec" ]; then
        if [ -n "$from_dpkg" ] && [ "$from_dpkg" != "$from_trtexec" ]; then
            warn "dpkg says TensorRT $from_dpkg but $TRTEXEC is $from_trtexec; using $from_trtexec"
        fi
        echo "$from_trtexec"
    elif [ -n "$from_dpkg" ]; then
        echo "$from_dpkg"
    else
        die "cannot tell the TensorRT version (no version in \`trtexec --help\`, no libnvinferN package); pass --tensorrt X.Y.Z"
    fi
}

detect_cuda() {
    if [ -n "$CUDA_OVERRIDE" ]; then echo "$CUDA_OVERRIDE"; return; fi
    local version_json=/usr/local/cuda/version.json v=""
    if [ -f "$version_json" ]; then
        # {"cuda" : {"name" : "CUDA SDK", "version" : "12.6.68"}, ...}
        v="$(tr -d '\n' <"$version_json" | sed -n 's/.*"cuda"[[:space:]]*:[[:space:]]*{[^}]*"version"[[:space:]]*:[[:space:]]*"\([0-9]\+\.[0-9]\+\).*/\1/p')"
    fi
    if [ -z "$v" ]; then
        local nvcc
        nvcc="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
        if [ -x "$nvcc" ]; then
            v="$("$nvcc" --version | sed -n 's/.*release \([0-9]\+\.[0-9]\+\).*/\1/p' | head -1)"
        fi
    fi
    [ -n "$v" ] || die "cannot tell the CUDA version (no /usr/local/cuda/version.json, no nvcc)"
    echo "$v"
}

DT_MODEL=""
[ -r /proc/device-tree/model ] && DT_MODEL="$(tr -d '\0' </proc/device-tree/model)"
DT_COMPATIBLE=""
[ -r /proc/device-tree/compatible ] && DT_COMPATIBLE="$(tr '\0' ' ' </proc/device-tree/compatible)"

detect_compute_capability() {
    if [ -n "$CC_OVERRIDE" ]; then echo "$CC_OVERRIDE"; return; fi
    # Orin (T234, Ampere iGPU ga10b) is compute capability 8.7.
    case "$DT_MODEL $DT_COMPATIBLE" in
        *Orin*|*tegra234*) echo "8.7"; return ;;
    esac
    if command -v nvidia-smi >/dev/null 2>&1; then
        local cc
        cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' ')"
        if [[ "$cc" =~ ^[0-9]+\.[0-9]+$ ]]; then echo "$cc"; return; fi
    fi
    die "not an Orin (/proc/device-tree/model: '${DT_MODEL:-none}') and no nvidia-smi; pass --compute-capability X.Y"
}

detect_dla_cores() {
    if [ -n "$DLA_OVERRIDE" ]; then echo "$DLA_OVERRIDE"; return; fi
    # One control node per DLA core; fall back to the module when /dev is not populated yet.
    local n=0 node
    for node in /dev/nvhost-ctrl-nvdla[0-9]*; do [ -e "$node" ] && n=$((n + 1)); done
    if [ "$n" -eq 0 ]; then
        case "$DT_MODEL" in
            *"AGX Orin"*) n=2 ;;
            *"Orin NX"*) n=2 ;;   # Orin NX 16GB; the 8GB module has 1 and shows its node
            *) n=0 ;;              # Orin Nano and anything else: no DLA
        esac
    fi
    echo "$n"
}

TENSORRT="$(detect_tensorrt)"
TRT_MAJOR="${TENSORRT%%.*}"
CUDA="$(detect_cuda)"
COMPUTE_CAPABILITY="$(detect_compute_capability)"
DLA_CORES="$(detect_dla_cores)"

say "bundle:             $BUNDLE"
say "device:             ${DT_MODEL:-unknown (no /proc/device-tree/model)}"
say "TensorRT:           $TENSORRT ($TRTEXEC)"
say "CUDA:               $CUDA"
say "compute capability: $COMPUTE_CAPABILITY"
say "DLA cores:          $DLA_CORES"
if [ "$BATCH_PROFILE" -eq 1 ]; then
    say "batch:              GPU 1..$MAX_BATCH, DLA 1 (manifest max_batch = $MAX_BATCH)"
else
    say "batch:              1 (the manifest declares no max_batch: a batch-1 model, built as it is)"
fi

# packd refuses engines whose dla_cores differs from [device] dla_cores; say so before building.
if [ -n "$CONFIG" ] && [ -r "$CONFIG" ] && [ "$DLA_CORES" -gt 0 ]; then
    configured="$(awk '
        /^[[:space:]]*\[/ { in_device = ($0 ~ /^[[:space:]]*\[device\][[:space:]]*$/); next }
        in_device && /^[[:space:]]*dla_cores[[:space:]]*=/ { v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[^0-9].*$/, "", v); print v; exit }
    ' "$CONFIG")"
    if [ -n "${PACKD_DEVICE__DLA_CORES:-}" ]; then configured="$PACKD_DEVICE__DLA_CORES"; fi
    if [ "${configured:-0}" != "$DLA_CORES" ]; then
        warn "$CONFIG has [device] dla_cores = ${configured:-0 (default)}, this device has $DLA_CORES:"
        warn "packd will refuse the DLA engines until you set dla_cores = $DLA_CORES there"
    fi
fi

# --- Model and flags per TensorRT major ----------------------------------------
case "$TRT_MAJOR" in
    8|9) die "TensorRT $TENSORRT is too old: packd supports TensorRT 10.x (JetPack 6) and 11.x (JetPack 7)" ;;
    10)
        if [ "$PRECISION" = int8 ]; then
            MODEL="${ONNX_OVERRIDE:-$BUNDLE/$FP32_MODEL}"
            [ -f "$BUNDLE/$CALIB_CACHE" ] || die "no calibration cache $BUNDLE/$CALIB_CACHE: TensorRT 10 needs it for INT8"
            PRECISION_FLAGS=(--int8 --fp16 "--calib=$BUNDLE/$CALIB_CACHE")
        else
            MODEL="${ONNX_OVERRIDE:-$BUNDLE/$FP32_MODEL}"
            PRECISION_FLAGS=(--fp16)
        fi
        ;;
    *)
        # 11.x and later: strongly typed only; the model carries the precision.
        if [ "$PRECISION" = int8 ]; then
            MODEL="${ONNX_OVERRIDE:-$BUNDLE/$INT8_MODEL}"
        else
            [ -n "$ONNX_OVERRIDE" ] || die "TensorRT $TENSORRT has no --fp16: an fp16 engine needs a strongly typed FP16 model
  (python3 -m modelopt.onnx.autocast --target_dla --low_precision_type fp16 --onnx_path $BUNDLE/$FP32_MODEL --output_path model_fp16.onnx)
  passed with --onnx FILE"
            MODEL="$ONNX_OVERRIDE"
        fi
        PRECISION_FLAGS=()
        ;;
esac
[ -f "$MODEL" ] || die "model $MODEL not found"

if [ "$TRT_MAJOR" -ge 11 ] && [ "$DLA_CORES" -gt 0 ]; then
    case "$DT_MODEL" in
        *"AGX Orin"*) ;;
        *) warn "TensorRT 11.4.1 supports DLA on Jetson AGX Orin (JetPack >= 7.2.2) only; DLA builds may fail on '${DT_MODEL:-this device}'" ;;
    esac
fi

# --- What to build -------------------------------------------------------------
declare -A REGISTERED_STATUS=() REGISTERED_TRT=()
if [ "$MISSING_ONLY" -eq 1 ]; then
    engine_list="$("$PACKD" engine list --bundle "$BUNDLE")" || die "\`packd engine list --bundle $BUNDLE\` failed"
    # target precision tensorrt file status (tab-separated)
    while IFS=$'\t' read -r l_target _ l_trt _ l_status; do
        [ -n "$l_target" ] || continue
        REGISTERED_STATUS["$l_target"]="$l_status"
        REGISTERED_TRT["$l_target"]="$l_trt"
    done <<<"$engine_list"
fi

# JetPack 6 puts it in /usr/lib/aarch64-linux-gnu/nvidia (nvidia-l4t-dla-compiler); JetPack 5 in
# .../tegra. PACKD_DLA_COMPILER_DIRS (space-separated) replaces the list, for unusual layouts.
dla_compiler_present() {
    local dir dirs
    read -r -a dirs <<<"${PACKD_DLA_COMPILER_DIRS:-/usr/lib/aarch64-linux-gnu/nvidia /usr/lib/aarch64-linux-gnu/tegra /usr/lib/aarch64-linux-gnu}"
    for dir in "${dirs[@]}"; do
        [ -e "$dir/libnvdla_compiler.so" ] && return 0
    done
    [ -z "${PACKD_DLA_COMPILER_DIRS:-}" ] && ldconfig -p 2>/dev/null | grep -q 'libnvdla_compiler\.so'
}
DLA_COMPILER_HINT="libnvdla_compiler.so is missing (some JetPack 6 images lack it): DLA builds cannot work.
  Fix: sudo apt-get install nvidia-l4t-dla-compiler   (then run this again)"

if [ -z "$LOG_DIR" ]; then
    if [ -n "${STATE_DIRECTORY:-}" ]; then LOG_DIR="${STATE_DIRECTORY%%:*}/engine-builds"
    elif [ -w /var/lib/packd ]; then LOG_DIR=/var/lib/packd/engine-builds
    else LOG_DIR="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/packd/engine-builds"; fi
fi

declare -A RESULT=() DETAIL=()
FAILED=0
PLAN_TARGETS=()
for t in "${TARGET_LIST[@]}"; do
    if [ "$t" != gpu ]; then
        core="${t#dla}"
        if [ "$core" -ge "$DLA_CORES" ]; then
            if [ "$DLA_CORES" -eq 0 ]; then
                say "$t: skipped: this device has no DLA (Orin Nano, or not a Jetson); its briefs run on the GPU engine"
            else
                say "$t: skipped: this device has $DLA_CORES DLA core(s)"
            fi
            RESULT[$t]="skipped"; DETAIL[$t]="no such DLA core"
            continue
        fi
    fi
    if [ "$MISSING_ONLY" -eq 1 ] && [ "${REGISTERED_STATUS[$t]:-}" = ok ]; then
        if [ "${REGISTERED_TRT[$t]}" = "$TENSORRT" ]; then
            say "$t: up to date (registered, hash ok, TensorRT $TENSORRT)"
            RESULT[$t]="up to date"; DETAIL[$t]=""
            continue
        fi
        say "$t: registered engine was built by TensorRT ${REGISTERED_TRT[$t]}, this is $TENSORRT: rebuilding"
    elif [ "$MISSING_ONLY" -eq 1 ] && [ -n "${REGISTERED_STATUS[$t]:-}" ]; then
        say "$t: registered engine is ${REGISTERED_STATUS[$t]}: rebuilding"
    fi
    # The missing library is a JetPack 6 (TensorRT 10) image problem; under 11.x only the log is checked.
    if [ "$t" != gpu ] && [ "$TRT_MAJOR" -eq 10 ] && ! dla_compiler_present; then
        printf '%s: %s: %s\n' "$PROG" "$t" "$DLA_COMPILER_HINT" >&2
        RESULT[$t]="FAILED"; DETAIL[$t]="libnvdla_compiler.so missing"; FAILED=1
        continue
    fi
    PLAN_TARGETS+=("$t")
done

trtexec_args() { # $1 target, $2 plan out, $3 layers out
    local t="$1"
    local args=("--onnx=$MODEL" "${PRECISION_FLAGS[@]}")
    [ "$t" = gpu ] || args+=("--useDLACore=${t#dla}" --allowGPUFallback)
    if [ "$BATCH_PROFILE" -eq 1 ]; then
        local top=1
        [ "$t" != gpu ] || top="$MAX_BATCH"
        args+=("--minShapes=$(shape_spec 1)" "--optShapes=$(shape_spec "$top")" "--maxShapes=$(shape_spec "$top")")
        if [ "$TRT_MAJOR" -eq 10 ] && [ "$PRECISION" = int8 ]; then args+=("--optShapesCalib=$(shape_spec 1)"); fi
    fi
    args+=("--saveEngine=$2" "--timingCacheFile=$ENGINE_DIR/timing.cache"
        --profilingVerbosity=detailed "--exportLayerInfo=$3" --skipInference
        "--memPoolSize=workspace:$WORKSPACE_MIB")
    printf '%s\n' "${args[@]}"
}

if [ "$DRY_RUN" -eq 1 ]; then
    for t in "${PLAN_TARGETS[@]}"; do
        mapfile -t args < <(trtexec_args "$t" "$ENGINE_DIR/model.$t.plan" "$ENGINE_DIR/model.$t.layers.json")
        say "$t: batch $(batch_range "$t"); would run: $TRTEXEC ${args[*]}"
    done
    [ "${#PLAN_TARGETS[@]}" -gt 0 ] || say "nothing to build"
    exit "$FAILED"
fi

# --- Build ---------------------------------------------------------------------
if [ "${#PLAN_TARGETS[@]}" -gt 0 ]; then
    mkdir -p "$ENGINE_DIR" "$LOG_DIR"
    # One build at a time per log dir (the first-boot unit and a manual run must not collide).
    exec 9>"$LOG_DIR/.build.lock"
    if ! flock -n 9; then
        say "another build-engines.sh holds $LOG_DIR/.build.lock; waiting"
        flock 9
    fi
    WORK="$(mktemp -d "$ENGINE_DIR/.build.XXXXXX")"
    trap 'rm -rf "$WORK"' EXIT
fi

# When run as root on a bundle owned by the service user, keep the files the service's.
fix_owner() { # files...
    if [ "$(id -u)" -eq 0 ] && [ "$(stat -c %u "$BUNDLE")" -ne 0 ]; then
        chown --reference="$BUNDLE" "$@"
    fi
}

json_layer_count() { # $1 layers json -> number of engine layers, or nothing
    if command -v python3 >/dev/null 2>&1 && [ -s "$1" ]; then
        python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d.get("Layers", [])))' "$1" 2>/dev/null || true
    fi
}

report_layers() { # $1 target, $2 build log, $3 layers json
    local dla gpu total
    if [ "$1" = gpu ]; then
        total="$(json_layer_count "$3")"
        DETAIL[$1]="${total:+$total engine layers, }all on GPU"
        say "$1: ${total:+$total engine layers, }all on the GPU (layer report: $3)"
        return
    fi
    # TensorRT's builder log lists the placement at INFO level:
    #   ---------- Layers Running on DLA ----------  [DlaLayer] {ForeignNode[...]}
    #   ---------- Layers Running on GPU ----------  [GpuLayer] NAME
    dla="$(grep -c '\[DlaLayer\]' "$2" || true)"
    gpu="$(grep -c '\[GpuLayer\]' "$2" || true)"
    if [ "$dla" -gt 0 ] || [ "$gpu" -gt 0 ]; then
        DETAIL[$1]="$dla on DLA, $gpu on GPU"
        say "$1: placement: $dla layer(s)/subgraph(s) on DLA, $gpu on GPU (from the builder log)"
        if [ "$1" != gpu ] && [ "$gpu" -gt 0 ]; then
            say "$1: GPU fallback layers:"
            grep '\[GpuLayer\]' "$2" | sed 's/.*\[GpuLayer\][[:space:]]*/    /' | head -40
        fi
        return
    fi
    total="$(json_layer_count "$3")"
    DETAIL[$1]="${total:+$total engine layers; }placement: see log"
    say "$1: the builder log does not list DLA/GPU placement. To see it:"
    say "    grep -A60 'Layers Running on' $2"
    say "    $TRTEXEC --loadEngine=$ENGINE_DIR/model.$1.plan${core_flag:+ $core_flag} --dumpLayerInfo --profilingVerbosity=detailed --skipInference"
    say "    (layer report: $3)"
}

for t in "${PLAN_TARGETS[@]}"; do
    plan_rel="engines/model.$t.plan"
    layers_rel="engines/model.$t.layers.json"
    tmp_plan="$WORK/model.$t.plan"
    tmp_layers="$WORK/model.$t.layers.json"
    log="$LOG_DIR/$(basename "$BUNDLE")-$t.log"
    core_flag=""
    [ "$t" = gpu ] || core_flag="--useDLACore=${t#dla}"
    mapfile -t args < <(trtexec_args "$t" "$tmp_plan" "$tmp_layers")
    say "$t: building ($PRECISION, TensorRT $TENSORRT, batch $(batch_range "$t")) from $(basename "$MODEL")${core_flag:+; a DLA build takes minutes}"
    say "$t: log: $log"
    started=$SECONDS
    if ! "$TRTEXEC" "${args[@]}" >"$log" 2>&1; then
        printf '%s: %s: trtexec failed after %ds; last lines of %s:\n' "$PROG" "$t" $((SECONDS - started)) "$log" >&2
        tail -n 25 "$log" | sed 's/^/    /' >&2
        if grep -q 'libnvdla_compiler' "$log"; then printf '%s: %s\n' "$PROG" "$DLA_COMPILER_HINT" >&2; fi
        printf '%s: command: %s %s\n' "$PROG" "$TRTEXEC" "${args[*]}" >&2
        RESULT[$t]="FAILED"; DETAIL[$t]="trtexec failed"; FAILED=1
        continue
    fi
    built_by="$(trt_version_from_text <"$log" || true)"
    if [ -n "$built_by" ] && [ "$built_by" != "$TENSORRT" ]; then
        warn "$t: trtexec reports TensorRT $built_by, expected $TENSORRT: not registering this engine"
        RESULT[$t]="FAILED"; DETAIL[$t]="TensorRT version mismatch"; FAILED=1
        continue
    fi
    [ -s "$tmp_plan" ] || { warn "$t: trtexec succeeded but wrote no engine"; RESULT[$t]="FAILED"; DETAIL[$t]="no plan written"; FAILED=1; continue; }
    mv -f "$tmp_plan" "$BUNDLE/$plan_rel"
    if [ -s "$tmp_layers" ]; then mv -f "$tmp_layers" "$BUNDLE/$layers_rel"; fi
    fix_owner "$BUNDLE/$plan_rel" "$ENGINE_DIR"
    [ ! -e "$BUNDLE/$layers_rel" ] || fix_owner "$BUNDLE/$layers_rel"
    [ ! -e "$ENGINE_DIR/timing.cache" ] || fix_owner "$ENGINE_DIR/timing.cache"
    say "$t: built in $((SECONDS - started))s: $BUNDLE/$plan_rel ($(stat -c %s "$BUNDLE/$plan_rel") bytes)"
    report_layers "$t" "$log" "$BUNDLE/$layers_rel"

    register=("$PACKD" engine register --bundle "$BUNDLE" --target "$t" --precision "$PRECISION"
        --file "$plan_rel" --tensorrt "$TENSORRT" --cuda "$CUDA" --compute-capability "$COMPUTE_CAPABILITY")
    [ "$t" = gpu ] || register+=(--dla-cores "$DLA_CORES")
    if "${register[@]}"; then
        fix_owner "$MANIFEST"
        RESULT[$t]="built"
        say "$t: registered in $MANIFEST"
    else
        warn "$t: \`${register[*]}\` failed"
        RESULT[$t]="FAILED"; DETAIL[$t]="register failed"; FAILED=1
    fi
done

# --- Summary -------------------------------------------------------------------
printf '\n%-6s %-12s %s\n' "target" "result" "detail"
for t in "${TARGET_LIST[@]}"; do
    printf '%-6s %-12s %s\n' "$t" "${RESULT[$t]:-?}" "${DETAIL[$t]:-}"
done
if [ "$FAILED" -ne 0 ]; then
    say "some engines were not built; packd serves those targets' briefs from the other engines or the CPU"
    exit 1
fi
say "done. Check them with: /usr/lib/packd/selftest.sh --bundle $BUNDLE"
