"""How the recipe writes a bundle's JSON files: UTF-8, LF, sorted keys, one trailing newline, so
that two builds write the same bytes."""

import json


def dump_json(path, obj):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")
