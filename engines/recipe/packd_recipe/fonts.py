"""The typefaces previews are drawn in: each font pairing's heading and body faces, and one CJK
face for Chinese text, as TrueType files under the bundle's `fonts/` with `fonts/index.json`.

Latin faces come from the kiosk's Latin subsets (kiosk/fonts/*.woff2, OFL, licences in
kiosk/fonts/LICENSES), unpacked from WOFF2 to plain TrueType so packd reads them without a
Brotli decoder; a heading is drawn in its face's boldest file, a body in its regular one. The
catalogue's CJK faces (Noto Sans SC, ZCOOL, …) are not shipped: Chinese text is drawn in
WenQuanYi Micro Hei (Apache-2.0, Debian's fonts-wqy-microhei), subset to the 3 755 characters of
GB 2312 level 1, every character of the vocabulary's Chinese synonyms and catalogue names, CJK
punctuation and ASCII. A preview says which face it drew.

    python -m packd_recipe.fonts --bundle DIR     # (re)writes DIR/fonts and DIR/fonts/index.json
"""

import argparse
import json
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
KIOSK_FONTS = os.path.join(HERE, "..", "..", "..", "kiosk", "fonts")
CJK_SOURCE = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
CJK_FILE = "wqy-microhei-gb2312.ttf"
CJK_FAMILY = "WenQuanYi Micro Hei"
CJK_LICENCE = """WenQuanYi Micro Hei, subset by packd's recipe (GB 2312 level 1, the bundle's Chinese text,
CJK punctuation, ASCII). Copyright (c) 2007 Google Corporation; (c) 2008-2009 WenQuanYi Board
of Trustees and Qianqian Fang. Licensed under the Apache License, Version 2.0
(https://www.apache.org/licenses/LICENSE-2.0), the font's dual licence chosen here (the other
is GPLv3 with the font embedding exception). Source: Debian package fonts-wqy-microhei.
"""


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


def write_cjk(bundle, out_dir):
    from fontTools import subset  # noqa: PLC0415
    from fontTools.ttLib import TTFont  # noqa: PLC0415

    chars = set(gb2312_level1()) | set(bundle_text(bundle))
    chars |= {chr(c) for c in range(0x20, 0x7F)} | set("，。、；：？！“”‘’（）《》【】…—·￥％")
    font = TTFont(CJK_SOURCE, fontNumber=0, recalcTimestamp=False)
    options = subset.Options()
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.recalc_timestamp = False
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(chars)))
    subsetter.subset(font)
    font.save(os.path.join(out_dir, CJK_FILE), reorderTables=True)
    return len(chars)


def build(bundle, log=print):
    """Writes `bundle/fonts/`: the faces, their licences and `index.json`."""
    out_dir = os.path.join(bundle, "fonts")
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.join(out_dir, "licences"))
    with open(os.path.join(bundle, "catalogues", "fonts.json"), encoding="utf-8") as f:
        pairings = json.load(f)["pairings"]
    index = {"heading": {}, "body": {}, "cjk": {"family": CJK_FAMILY, "file": CJK_FILE}}
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
    count = write_cjk(bundle, out_dir)
    with open(os.path.join(out_dir, "licences", "wqy-microhei.txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(CJK_LICENCE)
    with open(os.path.join(out_dir, "index.json"), "w", encoding="utf-8", newline="\n") as f:
        json.dump(index, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(root, n)) for root, _, names in os.walk(out_dir) for n in names)
    log(f"fonts: {len(index['heading'])} heading and {len(index['body'])} body faces, CJK subset of "
        f"{count} characters, {size / 1e6:.2f} MB")
    return index


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    args = ap.parse_args(argv)
    build(args.bundle)


if __name__ == "__main__":
    main()
