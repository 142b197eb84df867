#!/usr/bin/env bash
# One-command, deterministic rebuild of engines/packd-default.
#   engines/recipe/build.sh [--out DIR] [--dataset FILE.jsonl [--dataset-only]]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
# tomllib (the recipe reads knowledge.toml) arrived in Python 3.11.
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { echo "build.sh: Python 3.11 or newer is needed (python3 is $(python3 --version 2>&1))" >&2; exit 1; }
# The preview's CJK faces are subset from a Debian font package (packd_recipe/fonts.py); say so now
# rather than after the training and the text encoder that come before the fonts step.
for CJK_FONT in /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
    /usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf; do
  [ -f "$CJK_FONT" ] ||
    { echo "build.sh: $CJK_FONT is missing; on Debian/Ubuntu: apt-get install fonts-noto-cjk fonts-lxgw-wenkai" >&2; exit 1; }
done
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv ||
    { echo "build.sh: python3 -m venv failed; on Debian/Ubuntu: apt-get install python3-venv" >&2; exit 1; }
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMEXPR_NUM_THREADS=1 PYTHONHASHSEED=0
OUT="$HERE/../packd-default"
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
exec .venv/bin/python -m packd_recipe.build --out "$OUT" "${ARGS[@]+"${ARGS[@]}"}"
