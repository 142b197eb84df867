"""The typefaces previews are drawn in: each font pairing's heading and body faces, Latin and
CJK, as font files under the bundle's `fonts/` with `fonts/index.json`.

Latin faces come from the kiosk's Latin subsets (kiosk/fonts/*.woff2, OFL, licences in
kiosk/fonts/LICENSES), unpacked from WOFF2 to plain TrueType so packd reads them without a
Brotli decoder; a heading is drawn in its face's boldest file, a body in its regular one.

CJK faces are Noto Sans CJK SC, Noto Serif CJK SC (Debian's fonts-noto-cjk) and LXGW WenKai
(fonts-lxgw-wenkai), all SIL OFL 1.1, in Bold for headings and Regular for bodies, each subset to
the 3 755 characters of GB 2312 level 1, every character of the vocabulary's Chinese synonyms and
catalogue names, CJK punctuation and ASCII. Noto Sans CJK SC is the same design as Source Han
Sans SC, and Noto Serif CJK SC as Source Han Serif SC. The catalogue's other display faces
(ZCOOL, Smiley Sans, the brush scripts) are drawn in the Noto face of their build (Debian's Smiley
Sans lacks characters of the bundle's own text; the others ship nowhere as full character sets a
recipe can subset), and the index names the face actually drawn.

    python -m packd_recipe.fonts --bundle DIR     # (re)writes DIR/fonts and DIR/fonts/index.json
"""

import argparse
import json
import os
import re
import shutil

from .files import dump_json

HERE = os.path.dirname(os.path.abspath(__file__))
KIOSK_FONTS = os.path.join(HERE, "..", "..", "..", "kiosk", "fonts")
NOTO_CJK_DIR = "/usr/share/fonts/opentype/noto"
WENKAI_DIR = "/usr/share/fonts/truetype/lxgw-wenkai"
# Index of the Simplified Chinese face in Debian's Noto CJK collections (JP, KR, SC, TC, HK, …).
NOTO_CJK_SC_INDEX = 2
# The drawn CJK faces: (build, weight) -> (source file, face in it, family drawn, file written).
CJK_SOURCES = {
    ("sans", 400): (f"{NOTO_CJK_DIR}/NotoSansCJK-Regular.ttc", NOTO_CJK_SC_INDEX, "Noto Sans CJK SC",
                    "noto-sans-cjk-sc-400.otf"),
    ("sans", 700): (f"{NOTO_CJK_DIR}/NotoSansCJK-Bold.ttc", NOTO_CJK_SC_INDEX, "Noto Sans CJK SC",
                    "noto-sans-cjk-sc-700.otf"),
    ("serif", 400): (f"{NOTO_CJK_DIR}/NotoSerifCJK-Regular.ttc", NOTO_CJK_SC_INDEX, "Noto Serif CJK SC",
                     "noto-serif-cjk-sc-400.otf"),
    ("serif", 700): (f"{NOTO_CJK_DIR}/NotoSerifCJK-Bold.ttc", NOTO_CJK_SC_INDEX, "Noto Serif CJK SC",
                     "noto-serif-cjk-sc-700.otf"),
    ("wenkai", 400): (f"{WENKAI_DIR}/LXGWWenKai-Regular.ttf", -1, "LXGW WenKai", "lxgw-wenkai-400.ttf"),
    ("wenkai", 700): (f"{WENKAI_DIR}/LXGWWenKai-Bold.ttf", -1, "LXGW WenKai", "lxgw-wenkai-700.ttf"),
}
# The build each catalogue CJK face is drawn in: its own design where a package ships it, else the
# one nearest in construction (brush scripts have modulated strokes, as serifs do).
CJK_BUILD = {
    "Noto Sans SC": "sans",
    "Source Han Sans SC": "sans",
    "Smiley Sans": "sans",
    "ZCOOL KuaiLe": "sans",
    "ZCOOL QingKe HuangYou": "sans",
    "Noto Serif SC": "serif",
    "Source Han Serif SC": "serif",
    "ZCOOL XiaoWei": "serif",
    "LXGW WenKai": "wenkai",
    "Ma Shan Zheng": "serif",
    "Zhi Mang Xing": "serif",
    "Long Cang": "serif",
    "Liu Jian Mao Cao": "serif",
}
SUBSET_NOTE = """Subset by packd's recipe (GB 2312 level 1, the bundle's Chinese text, CJK punctuation, ASCII;
no hinting, no OpenType layout features)."""
# Licence files written next to the faces: file -> (files it covers, the header before the OFL).
CJK_LICENCES = {
    "noto-cjk.txt": ("noto-", f"""Noto Sans CJK SC and Noto Serif CJK SC (Regular and Bold).
{SUBSET_NOTE}
Copyright 2014-2021 Adobe (http://www.adobe.com/), with Reserved Font Name 'Source'. Licensed
under the SIL Open Font License, Version 1.1 (https://openfontlicense.org), whose full text
follows. Source: Debian package fonts-noto-cjk (https://github.com/googlefonts/noto-cjk).

"""),
    "lxgw-wenkai.txt": ("lxgw-", f"""LXGW WenKai (Regular and Bold).
{SUBSET_NOTE}
Copyright 2021-2022 lxgw <calxgw2018@gmail.com>. Licensed under the SIL Open Font License,
Version 1.1 (https://openfontlicense.org), whose full text follows. Source: Debian package
fonts-lxgw-wenkai (https://github.com/lxgw/LxgwWenKai).

"""),
}


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def weights(face):
    """The weights the kiosk ships for `face`, ascending, with their files."""
    prefix = slug(face) + "-"
    found = []
    for name in os.listdir(KIOSK_FONTS):
        stem = name[len(prefix):-len(".woff2")] if name.startswith(prefix) and name.endswith(".woff2") else ""
        if stem.isdigit():
            found.append((int(stem), name))
    return sorted(found)


def gb2312_level1():
    """The 3 755 hanzi of GB 2312 level 1 (rows 16-55)."""
    chars = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return chars


def bundle_text(bundle):
    """Every character of the bundle's Chinese text (synonyms, catalogue names)."""
    text = []
    with open(os.path.join(bundle, "vocabulary.json"), encoding="utf-8") as f:
        for term in json.load(f)["terms"]:
            text.extend(term.get("zh", []))
    for name, key in (("styles", "styles"), ("palettes", "palettes"), ("fonts", "pairings")):
        with open(os.path.join(bundle, "catalogues", f"{name}.json"), encoding="utf-8") as f:
            for item in json.load(f)[key]:
                text.extend(str(v) for k, v in item.items() if k.endswith("_zh"))
    return "".join(text)


def write_latin(face, weight, source, out_dir):
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    font = TTFont(os.path.join(KIOSK_FONTS, source), recalcTimestamp=False)
    font.flavor = None
    name = f"{slug(face)}-{weight}.ttf"
    font.save(os.path.join(out_dir, name), reorderTables=True)
    return name


def cjk_text(bundle):
    """The characters every CJK face is subset to."""
    chars = set(gb2312_level1()) | set(bundle_text(bundle))
    chars |= {chr(c) for c in range(0x20, 0x7F)} | set("，。、；：？！“”‘’（）《》【】…—·￥％")
    return "".join(sorted(chars))


def write_cjk(source, number, text, out_dir, file):
    from fontTools import subset  # noqa: PLC0415
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    font = TTFont(source, fontNumber=number, recalcTimestamp=False)
    options = subset.Options()
    # Previews place glyphs by advance (and `kern`, which these faces lack); dropping the layout
    # tables and the hints halves each file.
    options.layout_features = []
    options.hinting = False
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    font.save(os.path.join(out_dir, file), reorderTables=True)


def ofl_text():
    """The OFL's text, from a kiosk licence file that carries it."""
    with open(os.path.join(KIOSK_FONTS, "LICENSES", "noto-sans-sc.txt"), encoding="utf-8") as f:
        text = f.read()
    start = text.find("SIL OPEN FONT LICENSE")
    if start < 0:
        raise SystemExit("fonts: kiosk/fonts/LICENSES/noto-sans-sc.txt does not carry the OFL's text")
    return text[start:]


def cjk_index(pairings, bundle, out_dir):
    """Writes the CJK faces the pairings need; returns the index's `cjk_heading` and `cjk_body`."""
    text = cjk_text(bundle)
    written = {}
    index = {"cjk_heading": {}, "cjk_body": {}}
    for role, weight in (("heading", 700), ("body", 400)):
        for face in sorted({p[f"{role}_cjk"] for p in pairings}):
            build = CJK_BUILD.get(face)
            if build is None:
                raise SystemExit(f"fonts: no CJK build (sans or serif) for the {role} face '{face}'")
            source, number, family, file = CJK_SOURCES[(build, weight)]
            if file not in written:
                write_cjk(source, number, text, out_dir, file)
                written[file] = True
            index[f"cjk_{role}"][face] = {"family": family, "file": file, "weight": weight}
    for name, (prefix, header) in CJK_LICENCES.items():
        if any(file.startswith(prefix) for file in written):
            with open(os.path.join(out_dir, "licences", name), "w", encoding="utf-8", newline="\n") as f:
                f.write(header + ofl_text())
    return index, len(text)


def build(bundle, log=print):
    """Writes `bundle/fonts/`: the faces, their licences and `index.json`."""
    out_dir = os.path.join(bundle, "fonts")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.join(out_dir, "licences"))
    with open(os.path.join(bundle, "catalogues", "fonts.json"), encoding="utf-8") as f:
        pairings = json.load(f)["pairings"]
    index = {"heading": {}, "body": {}}
    for role in ("heading", "body"):
        for face in sorted({p[role] for p in pairings}):
            available = weights(face)
            if not available:
                raise SystemExit(f"fonts: no kiosk file for the {role} face '{face}'")
            # Headings in the boldest file, bodies in the regular one (or the lightest there is).
            regular = [w for w in available if w[0] == 400]
            weight, source = available[-1] if role == "heading" else (regular or available)[0]
            index[role][face] = {"file": write_latin(face, weight, source, out_dir), "weight": weight}
            licence = os.path.join(KIOSK_FONTS, "LICENSES", f"{slug(face)}.txt")
            if os.path.exists(licence):
                shutil.copyfile(licence, os.path.join(out_dir, "licences", f"{slug(face)}.txt"))
    cjk, count = cjk_index(pairings, bundle, out_dir)
    index.update(cjk)
    dump_json(os.path.join(out_dir, "index.json"), index)
    size = sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(out_dir) for n in names)
    log(f"fonts: {len(index['heading'])} heading and {len(index['body'])} body faces, CJK subsets of "
        f"{count} characters, {size / 1e6:.2f} MB")
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    args = ap.parse_args(argv)
    build(args.bundle)


if __name__ == "__main__":
    main()
