"""The pack forms a preview is drawn on, and which products come in which: `catalogues/packs.json`.

A preview is the front a shopper sees. Its proportions follow the pack the product is sold in on
a retail shelf: a carton's front panel (3:4), a bottle's or jar's wrap-around label seen from the
front (3:2, wider than tall), or a stand-up pouch (2:3). Products not listed get the default, a
box front. The mapping is category convention (source `category` of knowledge.toml), not a
measurement.

    python -m packd_recipe.packs --bundle DIR     # (re)writes DIR/catalogues/packs.json
"""

import argparse
import json
import os

from .files import dump_json

DEFAULT = "box"

PACKS = [
    {
        "id": "box",
        "name": "box front",
        "name_zh": "盒装正面",
        "width": 720,
        "height": 960,
        "products": [
            "product:apparel", "product:baby_care", "product:baby_formula", "product:bakery",
            "product:biscuits", "product:books", "product:cereal", "product:cosmetics", "product:dairy",
            "product:electronics", "product:feminine_care", "product:flowers", "product:fragrance",
            "product:headphones", "product:health_supplements", "product:home_fragrance",
            "product:ice_cream", "product:jewellery", "product:kitchenware", "product:mooncake",
            "product:oral_care", "product:otc_medicine", "product:phone_accessories",
            "product:skincare", "product:stationery", "product:sunscreen", "product:tea", "product:toys",
        ],
    },
    {
        "id": "bottle_label",
        "name": "bottle label",
        "name_zh": "瓶贴",
        "width": 960,
        "height": 640,
        "products": [
            "product:baijiu", "product:beverage", "product:bottled_water", "product:condiments",
            "product:craft_beer", "product:energy_drink", "product:haircare", "product:honey",
            "product:household", "product:personal_care", "product:plant_milk", "product:wine_spirits",
        ],
    },
    {
        "id": "pouch",
        "name": "stand-up pouch",
        "name_zh": "立袋正面",
        "width": 720,
        "height": 1080,
        "products": [
            "product:coffee", "product:confectionery", "product:fresh_produce", "product:frozen_food",
            "product:hot_pot", "product:instant_noodles", "product:meat_snacks", "product:pet_food",
            "product:protein_powder", "product:rice_grains", "product:seafood", "product:snacks",
        ],
    },
]


def build(bundle, log=print):
    """Writes `bundle/catalogues/packs.json`; every product listed must be a vocabulary term."""
    with open(os.path.join(bundle, "vocabulary.json"), encoding="utf-8") as f:
        products = {t["id"] for t in json.load(f)["terms"] if t["group"] == "product"}
    seen = {}
    for pack in PACKS:
        for product in pack["products"]:
            if product not in products:
                raise SystemExit(f"packs: '{product}' ({pack['id']}) is not a product of the vocabulary")
            if product in seen:
                raise SystemExit(f"packs: '{product}' is in both '{seen[product]}' and '{pack['id']}'")
            seen[product] = pack["id"]
    catalogue = {"version": "1.0.0", "default": DEFAULT, "packs": PACKS}
    dump_json(os.path.join(bundle, "catalogues", "packs.json"), catalogue)
    log(f"packs: {len(PACKS)} pack forms; {len(seen)} of {len(products)} products placed, the rest on '{DEFAULT}'")
    return catalogue


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    args = ap.parse_args(argv)
    build(args.bundle)


if __name__ == "__main__":
    main()
