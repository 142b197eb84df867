#!/usr/bin/env python3
"""Build kiosk/fonts/ (woff2 files, fonts.css, fonts.json, LICENSES/) from unpacked @fontsource
packages (and @chinese-fonts/dyh for Smiley Sans).

Run through make-fonts.sh, which downloads the pinned packages with `npm pack` and calls
    python3 make-fonts.py <dir with the unpacked packages>
Needs fonttools and brotli (pip install fonttools brotli).

Every family the catalogue (engines/packd-default/catalogues/fonts.json) names is shipped in the
weights the page draws it at: a heading face at 700, a body face at 400, a CJK heading face at 700
and 400 (the preview line under the heading), a CJK body face at 400, each the nearest weight the
family has. Latin faces keep the glyphs the page can set in them (printable ASCII and a little
typography); CJK faces keep only the characters of the page's font previews (the Chinese product
names + 新品, the sample lines in app.js), so the whole directory stays small.
"""
import glob, json, os, re, shutil, sys
from fontTools import subset
from fontTools.merge import Merger, Options as MergeOptions
from fontTools.ttLib import TTFont

HERE = os.path.dirname(os.path.abspath(__file__))
KIOSK = os.path.dirname(HERE)
ROOT = os.path.dirname(KIOSK)
CATALOGUE = os.path.join(ROOT, "engines/packd-default/catalogues/fonts.json")

# The catalogue's Source Han faces are Adobe's names for the same design Google ships as Noto
# Sans/Serif SC (also OFL): the Noto files serve both names.
ALIAS = {"Source Han Sans SC": "Noto Sans SC", "Source Han Serif SC": "Noto Serif SC"}

# Families Fontsource does not publish, from another npm package that splits the font the same way
# (by unicode-range): family -> (unpacked package directory glob, its CSS, weight).
# @chinese-fonts/dyh is Smiley Sans (得意黑, atelierAnchor, OFL-1.1) cut by cn-font-split; the
# package's own MIT licence covers only its packaging, so the OFL text is written out here with
# the font's copyright line.
OTHER = {"Smiley Sans": ("chinese-fonts-dyh-*", "dist/SmileySans-Oblique/result.css", 400)}

LATIN = "".join(chr(c) for c in range(0x20, 0x7F)) + "\u00a0’‘“”–—…·•×é"


def cjk_text():
    terms = json.load(open(os.path.join(KIOSK, "terms.json"), encoding="utf-8"))
    text = "".join(t["zh"] + "新品" for t in terms["rows"]["product"])
    app = open(os.path.join(KIOSK, "app.js"), encoding="utf-8").read()
    # the zh sample lines: sample_heading's fallback, sample_body, sample_cjk, the "NEW · 新品" pill
    for key in ("sample_heading", "sample_body", "sample_cjk"):
        for m in re.finditer(key + r':[^\n]*', app):
            text += m.group(0)
    text += "新品，。、·：！？（）"
    return "".join(sorted({c for c in text if ord(c) >= 0x2E80}))


def slug(family):
    return re.sub(r"[^a-z0-9]+", "-", family.lower()).strip("-")


def nearest(weights, want):
    return min(weights, key=lambda w: (abs(w - want), -w))


def unicode_ranges(css_file):
    """{chunk file path: set of code points} from the @font-face rules of a CSS file that splits a
    font by unicode-range (a fontsource weight CSS, or cn-font-split's result.css)."""
    css = open(css_file, encoding="utf-8").read()
    out = {}
    for block in re.findall(r"@font-face\s*{(.*?)}", css, re.S):
        src = re.search(r"""url\(["']?\./([^"')]+\.woff2)["']?\)""", block)
        rng = re.search(r"unicode-range:\s*([^;]+);", block)
        if not src or not rng:
            continue
        cps = set()
        for part in rng.group(1).split(","):
            part = part.strip()[2:]
            if "-" in part:
                a, b = part.split("-")
                cps.update(range(int(a, 16), int(b, 16) + 1))
            else:
                cps.add(int(part, 16))
        out[os.path.join(os.path.dirname(css_file), src.group(1))] = cps
    return out


def subset_file(src, out, text):
    opts = subset.Options()
    opts.flavor = "woff2"
    opts.layout_features = ["kern", "liga", "clig", "calt", "ccmp", "locl", "mark", "mkmk", "palt", "vert"]
    opts.name_IDs = ["*"]  # keep copyright and licence records
    opts.notdef_outline = True
    font = TTFont(src, recalcTimestamp=False)  # the same input gives the same bytes
    s = subset.Subsetter(opts)
    s.populate(text=text)
    s.subset(font)
    font.flavor = "woff2"
    font.save(out)


def build_cjk(pkg, slug_, weight, text, out, work, css=None):
    files = os.path.join(pkg, "files")
    whole = os.path.join(files, f"{slug_}-latin-{weight}-normal.woff2")
    ranges = unicode_ranges(css or os.path.join(pkg, f"{weight}.css"))
    need = {ord(c) for c in text}
    chunks = [f for f, cps in ranges.items() if cps & need and (css or re.search(rf"-\d+-{weight}-normal", f))]
    if not chunks:  # a family fontsource ships unsplit (LXGW WenKai): the "latin" file is the whole font
        subset_file(whole, out, text)
        return
    parts = []
    for i, f in enumerate(sorted(chunks)):
        part_text = "".join(chr(c) for c in sorted(need & ranges[f]))
        p = os.path.join(work, f"{slug_}-{weight}-{i}.ttf")
        opts = subset.Options()
        opts.layout_features = ["*"]
        opts.name_IDs = ["*"]
        opts.notdef_outline = True
        opts.glyph_names = True
        font = TTFont(f, recalcTimestamp=False)
        s = subset.Subsetter(opts)
        s.populate(text=part_text)
        s.subset(font)
        font.flavor = None
        font.save(p)
        parts.append(p)
    merged = Merger(options=MergeOptions(drop_tables=["vmtx", "vhea", "MATH"])).merge(parts)
    merged.recalcTimestamp = False
    first = TTFont(parts[0])  # the merger stamps the time: keep the source's, for the same bytes
    merged["head"].created, merged["head"].modified = first["head"].created, first["head"].modified
    merged.flavor = "woff2"
    merged.save(out)


def other_family(fam, packs, text, work, css, done):
    pattern, css_path, weight = OTHER[fam]
    pkg = glob.glob(os.path.join(packs, pattern, "package"))[0]
    s = slug(fam)
    name = f"{s}-{weight}.woff2"
    build_cjk(pkg, s, weight, text, os.path.join(HERE, name), work, css=os.path.join(pkg, css_path))
    done[name] = True
    css.append(f'@font-face {{ font-family: "{fam}"; src: url("{name}") format("woff2"); '
               "font-weight: 100 900; font-style: normal; font-display: swap; }")
    font = TTFont(os.path.join(HERE, name))
    copyright_ = font["name"].getDebugName(0)
    # the OFL 1.1 text as Fontsource ships it, after its copyright line
    ofl = open(glob.glob(os.path.join(packs, "fontsource-noto-sans-sc-*", "package", "LICENSE"))[0], encoding="utf-8").read()
    ofl = ofl[ofl.index("This Font Software is licensed"):]
    open(os.path.join(HERE, "LICENSES", f"{s}.txt"), "w", encoding="utf-8").write(f"{copyright_}\n\n{ofl}")
    return f"{fam} ({weight})"


def main(packs):
    cat = json.load(open(CATALOGUE, encoding="utf-8"))
    want = {}  # family -> {(weight wanted)}, cjk flag
    for p in cat["pairings"]:
        for fam, ws, cjk in ((p.get("heading"), [700], False), (p.get("body"), [400], False),
                             (p.get("heading_cjk"), [700, 400], True), (p.get("body_cjk"), [400], True)):
            if fam:
                e = want.setdefault(fam, {"weights": set(), "cjk": cjk})
                e["weights"].update(ws)
    for f in glob.glob(os.path.join(HERE, "*.woff2")):
        os.remove(f)
    shutil.rmtree(os.path.join(HERE, "LICENSES"), ignore_errors=True)
    os.makedirs(os.path.join(HERE, "LICENSES"))
    work = os.path.join(packs, "_work")
    os.makedirs(work, exist_ok=True)
    cjk = cjk_text()
    css = ["/* Generated by make-fonts.sh from @fontsource packages (SIL Open Font License 1.1, texts in LICENSES/).",
           f"   CJK faces are subset to the page's preview characters: {cjk} */", ""]
    built, missing, done = [], [], {}
    for fam in sorted(want):
        source = ALIAS.get(fam, fam)
        s = slug(source)
        if fam in OTHER:
            built.append(other_family(fam, packs, cjk, work, css, done))
            continue
        pkgs = glob.glob(os.path.join(packs, f"fontsource-{s}-[0-9]*", "package"))
        if not pkgs:
            missing.append(fam)
            continue
        pkg = pkgs[0]
        meta = json.load(open(os.path.join(pkg, "metadata.json"), encoding="utf-8"))
        have = sorted(w for w in meta["weights"] if os.path.exists(os.path.join(pkg, f"{w}.css")))
        ship = sorted({nearest(have, w) for w in want[fam]["weights"]})
        for w in ship:
            name = f"{s}-{w}.woff2"
            if name not in done:
                out = os.path.join(HERE, name)
                if want[fam]["cjk"]:
                    build_cjk(pkg, s, w, cjk, out, work)
                else:
                    subset_file(os.path.join(pkg, "files", f"{s}-latin-{w}-normal.woff2"), out, LATIN)
                done[name] = True
            # one file only: let it serve every weight as it is drawn (no synthetic bold)
            weight = "100 900" if len(ship) == 1 else str(w)
            css.append(f'@font-face {{ font-family: "{fam}"; src: url("{name}") format("woff2"); '
                       f"font-weight: {weight}; font-style: normal; font-display: swap; }}")
        shutil.copy(os.path.join(pkg, "LICENSE"), os.path.join(HERE, "LICENSES", f"{s}.txt"))
        built.append(f"{fam} ({', '.join(map(str, ship))})" + (f" = {source}" if source != fam else ""))
    open(os.path.join(HERE, "fonts.css"), "w", encoding="utf-8").write("\n".join(css) + "\n")
    json.dump({"bundled": sorted(f for f in want if f not in missing), "missing": missing},
              open(os.path.join(HERE, "fonts.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=1)
    total = sum(os.path.getsize(f) for f in glob.glob(os.path.join(HERE, "*.woff2")))
    print(f"{len(built)} families, {len(done)} files, {total / 1e6:.2f} MB; not found: {', '.join(missing) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1])
