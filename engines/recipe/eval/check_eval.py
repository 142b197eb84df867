#!/usr/bin/env python3
"""Validate the held-out free-text evaluation set (freetext.jsonl) and print a summary.

Stdlib only. The term list is copied here (not read from the bundle) so the check stays independent
of the vocabulary under test; update it when the planned vocabulary (issue 15) changes.
Exit status 1 on any structural error; twin differences are reported but are not errors, because a
language may naturally say a little more or less.
"""
import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

TERMS = {
    "product": """
        beverage tea coffee snacks confectionery dairy cosmetics skincare fragrance baby_care
        pet_food household electronics toys wine_spirits health_supplements frozen_food bakery
        stationery apparel ice_cream craft_beer mooncake condiments instant_noodles personal_care
        jewellery fresh_produce home_fragrance energy_drink bottled_water plant_milk protein_powder
        baby_formula cereal biscuits honey rice_grains seafood meat_snacks haircare oral_care
        sunscreen phone_accessories headphones books flowers kitchenware otc_medicine baijiu
        feminine_care hot_pot
    """.split(),
    "audience": """
        young_women gen_z kids parents seniors men professionals luxury_buyers students eco_conscious
        fitness gamers pet_owners foodies millennials babies teens newlyweds expecting_mothers
        new_parents families couples singles tourists middle_aged
    """.split(),
    "mood": """
        fresh calm playful premium bold natural nostalgic futuristic cute elegant energetic warm cool
        minimal festive romantic sweet mysterious traditional healthy gentle trustworthy artistic
        rustic dreamy cozy edgy healing
    """.split(),
    "season": """
        summer_limited winter spring autumn
    """.split(),
    "occasion": """
        chinese_new_year mid_autumn christmas valentines gift back_to_school halloween
        shopping_festival dragon_boat wedding limited_edition lantern_festival qixi easter
        thanksgiving mothers_day fathers_day childrens_day new_year womens_day graduation birthday
        national_day
    """.split(),
    "palette": """
        morandi pastel earth_tones neon jewel_tones monochrome vintage nordic chinese_red_gold
        black_gold vivid ocean botanical_greens cream
    """.split(),
    "keyword": """
        guochao eco_friendly handmade cyberpunk illustration typography photography gradient
        geometric floral fruity window metallic holographic matte pattern mascot cartoon ink_wash
        paper_cut clinical sporty outdoor streetwear y2k art_deco zen kraft cream_style log_wood
        french maximalism barbiecore old_money brutalist dopamine maillard quiet_luxury wabi_sabi
        bauhaus memphis vaporwave cottagecore japandi boho industrial korean_style japanese_style
        pop_art dark_academia
    """.split(),
}
GROUP_OF = {t: g for g, ts in TERMS.items() for t in ts}
FIELDS = ("product", "audience", "mood", "palette", "keywords")
LIST_FIELDS = ("audience", "mood", "keywords")
MIN_BRIEFS = 200  # issue 15: "at least 200 briefs, English and Chinese twins"


def brief_values(brief):
    """The brief's values in gold order: (field, text) per value."""
    out = []
    for field in FIELDS:
        if field not in brief:
            continue
        v = brief[field]
        out.extend((field, x) for x in (v if field in LIST_FIELDS else [v]))
    return out


def check_brief(rec, where):
    """Structural errors of one record (contract types, gold alignment, known ids)."""
    errs = []
    if rec.get("lang") not in ("en", "zh"):
        errs.append(f"{where}: lang must be en or zh")
    if not isinstance(rec.get("pair"), int):
        errs.append(f"{where}: pair must be an integer")
    brief, gold = rec.get("brief"), rec.get("gold")
    if not isinstance(brief, dict) or not isinstance(gold, list):
        return errs + [f"{where}: brief must be an object and gold a list"]
    extra = set(brief) - set(FIELDS)
    if extra:
        errs.append(f"{where}: unexpected brief fields {sorted(extra)}")
    if not isinstance(brief.get("product"), str) or not brief["product"].strip():
        errs.append(f"{where}: product must be a non-empty string")
    if "palette" in brief and not isinstance(brief["palette"], str):
        errs.append(f"{where}: palette must be a string")
    for f in LIST_FIELDS:
        v = brief.get(f, [])
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            errs.append(f"{where}: {f} must be a list of non-empty strings")
    if errs:
        return errs
    want = brief_values(brief)
    got = [(g.get("field"), g.get("text")) for g in gold]
    if want != got:
        errs.append(f"{where}: gold (field, text) {got} != brief values {want}")
    for g in gold:
        ids = g.get("as")
        if not isinstance(ids, list):
            errs.append(f"{where}: gold 'as' must be a list")
            continue
        for i in ids:
            grp, _, term = str(i).partition(":")
            if GROUP_OF.get(term) != grp:
                errs.append(f"{where}: unknown term id {i!r}")
        if len(set(ids)) != len(ids):
            errs.append(f"{where}: duplicate ids in {ids}")
    return errs


def load(path):
    """Records with their line numbers, and JSON errors."""
    recs, errs = [], []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            recs.append((n, json.loads(line)))
        except json.JSONDecodeError as e:
            errs.append(f"line {n}: not JSON ({e})")
    return recs, errs


def summarise(recs):
    """Print counts, unknown share, per-group coverage and twin differences."""
    values = [g for _, r in recs for g in r["gold"]]
    unknown = sum(1 for g in values if not g["as"])
    used = {i for g in values for i in g["as"]}
    pairs = {r["pair"] for _, r in recs}
    print(f"briefs: {len(recs)} ({Counter(r['lang'] for _, r in recs)})  pairs: {len(pairs)}")
    print(f"term values: {len(values)}  unknown (gold empty): {unknown} ({unknown / len(values):.1%})")
    per_lang = Counter(r["lang"] for _, r in recs for _ in r["gold"])
    print(f"values per language: {dict(per_lang)}  per brief: {len(values) / len(recs):.2f}")
    print(f"values per field: {dict(Counter(g['field'] for g in values))}")
    print(f"multi-id values: {sum(1 for g in values if len(g['as']) > 1)}")
    hits = Counter(i for g in values for i in g["as"])
    print("coverage per group (distinct ids used / ids, gold mentions):")
    for grp, terms in TERMS.items():
        n_used = sum(1 for t in terms if f"{grp}:{t}" in used)
        mentions = sum(hits[f"{grp}:{t}"] for t in terms)
        missing = [t for t in terms if f"{grp}:{t}" not in used]
        tail = f"  missing: {' '.join(missing)}" if missing else ""
        print(f"  {grp:9s} {n_used:3d}/{len(terms):3d}  mentions {mentions:4d}{tail}")
    print(f"  all       {len(used):3d}/{len(GROUP_OF):3d}")
    by_pair = defaultdict(dict)
    for _, r in recs:
        by_pair[r["pair"]][r["lang"]] = {i for g in r["gold"] for i in g["as"]}
    diff = {p: d for p, d in by_pair.items() if d.get("en") != d.get("zh")}
    print(f"twins with identical gold id sets: {len(by_pair) - len(diff)}/{len(by_pair)}")
    for p, d in sorted(diff.items()):
        print(f"  pair {p}: en-only {sorted(d['en'] - d['zh'])} zh-only {sorted(d['zh'] - d['en'])}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", default=str(Path(__file__).with_name("freetext.jsonl")))
    path = ap.parse_args().path
    recs, errs = load(path)
    for n, r in recs:
        errs += check_brief(r, f"line {n}")
    langs = defaultdict(list)
    for _, r in recs:
        langs[r.get("pair")].append(r.get("lang"))
    for p, ls in sorted(langs.items(), key=lambda kv: str(kv[0])):
        if sorted(ls) != ["en", "zh"]:
            errs.append(f"pair {p}: languages {ls}, want exactly one en and one zh")
    if len(recs) < MIN_BRIEFS:
        errs.append(f"{len(recs)} briefs, want at least {MIN_BRIEFS}")
    if errs:
        print("\n".join(errs), file=sys.stderr)
        print(f"{len(errs)} error(s)", file=sys.stderr)
        return 1
    summarise(recs)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
