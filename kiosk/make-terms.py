#!/usr/bin/env python3
"""Writes kiosk/terms.json, the chips the kiosk page offers, from a bundle's vocabulary.

    python3 kiosk/make-terms.py [engines/packd-default/vocabulary.json] [kiosk/terms.json]

Each chip carries the term id and its first English and first Chinese synonym; the page sends
the synonym of the language on screen, so packd matches it exactly. Season terms join the moods
(packd matches `mood` against the mood, season and occasion groups); occasions get their own row.
Terms of the other groups (keywords) are no chips but `labels`, id → first English and Chinese
synonym: a reply's `understood` may read a typed value as one of them (国潮 as keyword:guochao).
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
src = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "engines/packd-default/vocabulary.json"
dst = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "kiosk/terms.json"

vocabulary = json.loads(src.read_text(encoding="utf-8"))
rows = {"product": ["product"], "audience": ["audience"], "mood": ["mood", "season"],
        "occasion": ["occasion"], "palette": ["palette"]}
out = {"source": f"{src.parent.name}/{src.name}", "vocabulary_version": vocabulary.get("version"),
       "rows": {}}
for row, groups in rows.items():
    out["rows"][row] = [
        {"id": term["id"], "en": term["en"][0], "zh": term["zh"][0]}
        for group in groups
        for term in vocabulary["terms"]
        if term["group"] == group
    ]
in_rows = {group for groups in rows.values() for group in groups}
out["labels"] = {
    term["id"]: {"en": term["en"][0], "zh": term["zh"][0]}
    for term in vocabulary["terms"]
    if term["group"] not in in_rows
}
dst.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
print(f"{dst}: " + ", ".join(f"{len(v)} {k}" for k, v in out["rows"].items())
      + f", {len(out['labels'])} other labels")
