"""Vocabulary and knowledge-base checks that need no model build (fast):
    engines/recipe/.venv/bin/python -m pytest engines/recipe/tests/test_vocab.py -q"""
import os
import sys
import tomllib

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from packd_recipe import content, knowledge, palettes as palmod, vocab as vocmod  # noqa: E402
from packd_recipe.teacher import Teacher  # noqa: E402

# the terms issue 15 added (ids of the planned vocabulary)
NEW_TERMS = {
    "product": "energy_drink bottled_water plant_milk protein_powder baby_formula cereal biscuits honey rice_grains "
               "seafood meat_snacks haircare oral_care sunscreen phone_accessories headphones books flowers "
               "kitchenware otc_medicine baijiu feminine_care hot_pot",
    "audience": "babies teens newlyweds expecting_mothers new_parents families couples singles tourists middle_aged",
    "mood": "dreamy cozy edgy healing",
    "keyword": "cream_style log_wood french maximalism barbiecore old_money brutalist dopamine maillard quiet_luxury "
               "wabi_sabi bauhaus memphis vaporwave cottagecore japandi boho industrial korean_style japanese_style "
               "pop_art dark_academia",
    "occasion": "lantern_festival qixi easter thanksgiving mothers_day fathers_day childrens_day new_year womens_day "
                "graduation birthday national_day",
}
NEW_IDS = [f"{g}:{t}" for g, ts in NEW_TERMS.items() for t in ts.split()]

FIELD = {"product": "product", "audience": "audience", "mood": "mood", "season": "mood", "occasion": "mood",
         "palette": "palette", "keyword": "keywords"}


@pytest.fixture(scope="module")
def vocab():
    return vocmod.build_vocabulary()


@pytest.fixture(scope="module")
def kn(vocab):
    return tomllib.loads(knowledge.write_toml(vocab))


@pytest.fixture(scope="module")
def teacher(vocab, kn):
    styles = [{"id": s[0]} for s in content.STYLES]
    pals, _ = palmod.build_palettes(seed=7)
    fonts = [{"id": f[0], "category": f[5], "traits": content.pairing_traits(f)} for f in content.FONTS]
    layouts = [{"id": l[0], "zones": {z: dict(zip("xywh", l[3][z])) for z in ("logo", "product", "text")}}
               for l in content.LAYOUTS]
    return Teacher(kn, vocab, styles, pals, fonts, layouts), styles, pals


def test_planned_terms_present(vocab):
    ids = [t["id"] for t in vocab["terms"]]
    assert len(ids) == 196 and len(NEW_IDS) == 71
    assert not set(NEW_IDS) - set(ids)
    for t in vocab["terms"]:
        if t["id"] in NEW_IDS:
            assert len(t["en"]) >= 3 and len(t["zh"]) >= 3, t["id"]


def test_every_synonym_reads_as_its_own_term(vocab):
    enc = vocmod.Encoder(vocab)
    for t in vocab["terms"]:
        for s in t["en"] + t["zh"]:
            assert enc.match(FIELD[t["group"]], s) == [t["index"]], (t["id"], s)


@pytest.mark.parametrize("field,word,term", [
    ("product", "能量饮料", "product:energy_drink"), ("product", "headphones", "product:headphones"),
    ("product", "耳机", "product:headphones"), ("product", "shampoo", "product:haircare"),
    ("product", "白酒", "product:baijiu"), ("product", "珍珠奶茶", "product:tea"), ("product", "cola", "product:beverage"),
    ("product", "面霜", "product:skincare"), ("product", "lip gloss", "product:cosmetics"), ("product", "猫粮", "product:pet_food"),
    ("audience", "families", "audience:families"), ("audience", "家庭", "audience:families"),
    ("audience", "宝宝", "audience:babies"), ("audience", "婴幼儿", "audience:babies"),
    ("mood", "治愈", "mood:healing"), ("mood", "七夕", "occasion:qixi"), ("mood", "六一", "occasion:childrens_day"),
    ("mood", "女神节", "occasion:womens_day"), ("mood", "元旦", "occasion:new_year"),
    ("keywords", "wabi sabi", "keyword:wabi_sabi"), ("keywords", "侘寂", "keyword:wabi_sabi"),
    ("keywords", "奶油风", "keyword:cream_style"), ("keywords", "原木风", "keyword:log_wood"), ("keywords", "法式", "keyword:french"),
    ("keywords", "极繁主义", "keyword:maximalism"), ("keywords", "Barbiecore", "keyword:barbiecore"),
    ("keywords", "芭比粉", "keyword:barbiecore"), ("keywords", "old money", "keyword:old_money"),
    ("keywords", "老钱风", "keyword:old_money"), ("keywords", "多巴胺", "keyword:dopamine"), ("keywords", "美拉德", "keyword:maillard"),
])
def test_words_people_type(vocab, field, word, term):
    enc = vocmod.Encoder(vocab)
    assert [vocab["terms"][i]["id"] for i in enc.match(field, word)] == [term]


def test_knowledge_is_complete_and_consistent(vocab, kn):
    styles = {s[0] for s in content.STYLES}
    traits, cats = set(content.FONT_TRAITS), set(content.FONT_CATEGORIES)
    layouts = {l[0] for l in content.LAYOUTS}
    for t in vocab["terms"]:
        e = kn["terms"][t["id"]]
        assert e["styles"] and set(e["styles"]) <= styles, t["id"]
        assert e["source"] in kn["sources"] and e["rationale"], t["id"]
        assert set(e.get("families", [])) <= set(palmod.FAMILIES), t["id"]
        assert set(e.get("font_traits", [])) <= traits, t["id"]
        assert set(e.get("font_categories", [])) <= cats, t["id"]
        assert set(e.get("layouts", {})) <= layouts, t["id"]
        if t["id"] in NEW_IDS:
            # design knowledge, not only recognition: a colour target, a type voice and a layout
            assert e.get("families") or e.get("hues"), t["id"]
            assert e.get("font_traits") and e.get("layouts"), t["id"]


@pytest.mark.parametrize("term,top_styles,families", [
    ("keyword:barbiecore", {"playful", "kawaii"}, {"pastel", "vivid", "neon"}),
    ("keyword:old_money", {"luxury", "retro_vintage"}, {"earth_tones", "jewel_tones", "cream"}),
    ("keyword:brutalist", {"bold_graphic"}, {"monochrome", "vivid"}),
    ("keyword:maillard", {"retro_vintage", "natural_organic"}, {"earth_tones", "vintage"}),
    ("keyword:dopamine", {"playful"}, {"vivid", "neon"}),
    ("keyword:cream_style", {"minimalist"}, {"cream"}),
    ("keyword:log_wood", {"natural_organic", "scandinavian"}, {"cream", "earth_tones", "nordic"}),
    ("mood:healing", {"minimalist", "botanical", "kawaii"}, {"pastel", "morandi"}),
    ("product:energy_drink", {"bold_graphic"}, {"neon", "vivid", "monochrome"}),
    ("product:baijiu", {"guochao", "luxury"}, {"chinese_red_gold", "black_gold"}),
    ("occasion:national_day", {"guochao", "festive"}, {"chinese_red_gold"}),
])
def test_teacher_reads_new_terms_like_a_designer(vocab, teacher, term, top_styles, families):
    t, styles, pals = teacher
    x = np.zeros((1, len(vocab["terms"])))
    x[0, [v["id"] for v in vocab["terms"]].index(term)] = 1.0
    o = t.score(x, np.zeros((1, 24)), np.zeros((1, 16)))
    assert styles[int(np.argmax(o["styles"][0]))]["id"] in top_styles
    top3 = [pals[k]["family"] for k in np.argsort(-o["palettes"][0], kind="stable")[:3]]
    assert set(top3) <= families, top3


@pytest.mark.parametrize("brief,families,at_least", [
    ({"product": "skincare", "keywords": ["dopamine"]}, {"vivid", "neon"}, 3),
    ({"product": "茶", "keywords": ["多巴胺"]}, {"vivid", "neon"}, 3),
    ({"product": "香水", "keywords": ["芭比粉"]}, {"pastel", "vivid", "neon"}, 2),
])
def test_colour_naming_trend_words_steer_the_palette(vocab, teacher, brief, families, at_least):
    t, _, pals = teacher
    x = np.array([vocmod.Encoder(vocab).encode(brief)[0]])
    o = t.score(x, np.zeros((1, 24)), np.zeros((1, 16)))
    top3 = [pals[k]["family"] for k in np.argsort(-o["palettes"][0], kind="stable")[:3]]
    assert sum(f in families for f in top3) >= at_least, top3


@pytest.mark.parametrize("field,value,terms", [
    ("palette", "vaporwave pinks", ["keyword:vaporwave"]), ("palette", "蒸汽波粉紫", ["keyword:vaporwave"]),
    ("keywords", "orange gradient", ["keyword:gradient"]), ("keywords", "橙色渐变", ["keyword:gradient"]),
    ("palette", "pinks", ["palette:pastel"]),
])
def test_a_colour_beside_a_named_look_is_that_looks_colour(vocab, field, value, terms):
    # the mirror of packd's Vocabulary::contained (crates/bundle/src/catalogue.rs)
    from packd_recipe.reading import Reader
    read = Reader(vocab).read(field, value)
    assert [vocab["terms"][i]["id"] for i in read[0]] == terms
