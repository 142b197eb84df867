#!/bin/sh
# Regenerates kiosk/fonts/ (woff2 files, fonts.css, fonts.json, LICENSES/) from the open-licence
# (OFL-1.1) typefaces the catalogue names, as Fontsource publishes them on npm (Google Fonts' files).
# Needs npm, python3 with fonttools and brotli (pip install fonttools brotli). Nothing here is a
# runtime dependency of the page: the output is committed.
#
#   sh kiosk/fonts/make-fonts.sh
#
# After a catalogue with new families, add their packages below (npm view @fontsource/<family>),
# run this, and commit kiosk/fonts/. Smiley Sans is not on Fontsource: it comes from
# @chinese-fonts/dyh (the same OFL font, split the same way; see OTHER in make-fonts.py).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PACKAGES="
  @fontsource/abril-fatface@5.3.0 @fontsource/alfa-slab-one@5.3.0
  @fontsource/amatic-sc@5.3.0 @fontsource/anton@5.3.0 @fontsource/archivo@5.3.0
  @fontsource/archivo-black@5.3.0 @fontsource/arvo@5.3.0 @fontsource/audiowide@5.3.0
  @fontsource/baloo-2@5.3.0 @fontsource/barlow@5.3.0 @fontsource/barlow-condensed@5.3.0
  @fontsource/bebas-neue@5.3.0 @fontsource/bodoni-moda@5.3.0 @fontsource/bungee@5.3.0
  @fontsource/caveat@5.3.0 @fontsource/caveat-brush@5.3.0 @fontsource/chakra-petch@5.3.0
  @fontsource/cinzel@5.3.0 @fontsource/cinzel-decorative@5.3.0 @fontsource/comfortaa@5.3.0
  @fontsource/cormorant@5.3.0 @fontsource/cormorant-garamond@5.3.0 @fontsource/crimson-pro@5.3.0
  @fontsource/dm-sans@5.3.0 @fontsource/dm-serif-display@5.3.0 @fontsource/dancing-script@5.3.0
  @fontsource/eb-garamond@5.3.0 @fontsource/exo-2@5.3.0 @fontsource/figtree@5.3.0
  @fontsource/fraunces@5.3.0 @fontsource/fredoka@5.3.0 @fontsource/great-vibes@5.3.0
  @fontsource/ibm-plex-mono@5.3.0 @fontsource/ibm-plex-sans@5.3.0
  @fontsource/ibm-plex-serif@5.3.0 @fontsource/indie-flower@5.3.0
  @fontsource/instrument-sans@5.3.0 @fontsource/instrument-serif@5.3.0
  @fontsource/inter@5.3.0 @fontsource/josefin-sans@5.3.0 @fontsource/jost@5.3.0
  @fontsource/kalam@5.3.0 @fontsource/karla@5.3.0 @fontsource/lxgw-wenkai@5.3.0
  @fontsource/lato@5.3.0 @fontsource/lexend@5.3.0 @fontsource/libre-baskerville@5.3.0
  @fontsource/limelight@5.3.0 @fontsource/liu-jian-mao-cao@5.3.0 @fontsource/lobster@5.3.0
  @fontsource/long-cang@5.3.0 @fontsource/lora@5.3.0 @fontsource/ma-shan-zheng@5.3.1
  @fontsource/manrope@5.3.0 @fontsource/marcellus@5.3.0 @fontsource/montserrat@5.3.0
  @fontsource/noto-sans@5.3.0 @fontsource/noto-sans-sc@5.3.0 @fontsource/noto-serif@5.3.0
  @fontsource/noto-serif-sc@5.3.0 @fontsource/nunito@5.3.0 @fontsource/open-sans@5.3.0
  @fontsource/orbitron@5.3.0 @fontsource/oswald@5.3.0 @fontsource/outfit@5.3.0
  @fontsource/pacifico@5.3.0 @fontsource/patrick-hand@5.3.0 @fontsource/playfair-display@5.3.0
  @fontsource/plus-jakarta-sans@5.3.0 @fontsource/poiret-one@5.3.0 @fontsource/poppins@5.3.0
  @fontsource/prata@5.3.0 @fontsource/quicksand@5.3.0 @fontsource/rajdhani@5.3.0
  @fontsource/raleway@5.3.0 @fontsource/righteous@5.3.0 @fontsource/rubik@5.3.0
  @fontsource/rye@5.3.0 @fontsource/sacramento@5.3.0 @fontsource/shrikhand@5.3.0
  @fontsource/sora@5.3.0 @fontsource/source-sans-3@5.3.1 @fontsource/source-serif-4@5.3.1
  @fontsource/space-grotesk@5.3.0 @fontsource/space-mono@5.3.0 @fontsource/spectral@5.3.0
  @fontsource/syne@5.3.0 @fontsource/titillium-web@5.3.0 @fontsource/unbounded@5.3.0
  @fontsource/urbanist@5.3.0 @fontsource/varela-round@5.3.0 @fontsource/work-sans@5.3.0
  @fontsource/yeseva-one@5.3.0 @fontsource/young-serif@5.3.0 @fontsource/zcool-kuaile@5.3.0
  @fontsource/zcool-qingke-huangyou@5.3.0 @fontsource/zcool-xiaowei@5.3.0
  @fontsource/zhi-mang-xing@5.3.0 @fontsource/zilla-slab@5.3.0
  @chinese-fonts/dyh@1.4.0
"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"
# shellcheck disable=SC2086 # one word per package
npm pack --silent $PACKAGES >packed.txt
while read -r tgz; do
  mkdir "${tgz%.tgz}"
  tar xzf "$tgz" -C "${tgz%.tgz}"
done <packed.txt
python3 "$HERE/make-fonts.py" "$TMP"
