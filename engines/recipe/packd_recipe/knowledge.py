"""The design knowledge (teacher) authored compactly here, written out as knowledge.toml.
The teacher (teacher.py) reads ONLY the written knowledge.toml back, so the TOML is the truth.

Units: lightness/chroma are CIELAB L*/100 and C*/100 (palette `attributes` use the same);
temperature is the Ou et al. (2004) warm-cool index (about -1.8 cool .. +1.6 warm, neutral grey -0.5);
hues are CIELAB hue angles in degrees with a tolerance width.
"""
from .palettes import HUES

HUE = {h[0]: h[2] for h in HUES}
HUE.update({"red": 30, "orange": 60, "yellow": 95, "green": 140, "blue": 265, "purple": 315, "pink": 355, "gold": 85, "brown": 60, "magenta": 335})

SOURCES = {
    "kobayashi": "Kobayashi, S. (1991) Color Image Scale, Kodansha: warm/cool x soft/hard image space and word-colour associations.",
    "ou2004": "Ou, L.-C., Luo, M.R., Woodcock, A., Wright, A. (2004) A study of colour emotion and colour preference, Color Res. Appl. 29(3), 232-240.",
    "wcag": "W3C WCAG 2.x success criterion 1.4.3: text contrast ratio >= 4.5:1.",
    "hasler": "Hasler, D., Suesstrunk, S. (2003) Measuring colourfulness in natural images, Proc. SPIE 5007.",
    "category": "Retail shelf conventions per category (observed category colour codes and typography in mass-market packaging).",
    "cn_culture": "Chinese festival and colour symbolism (red = luck, gold = wealth, jade = longevity) as used in festive and guochao packaging.",
    "gestalt": "Layout practice: visual hierarchy logo > product > claim; Z/F reading patterns; vertical CJK setting.",
}


def S(styles):
    out = {}
    for tok in styles.split():
        k, v = tok.split(":")
        out[k] = float(v)
    return out


def H(hues, width=28):
    return [[float(HUE[h.replace("_", " ")]), float(width)] for h in hues.split()]


def L(layouts):
    return S(layouts)


# ---------------------------------------------------------------- styles
# lightness, chroma, temperature ranges; hues; families; font traits/categories; layouts
STYLE_K = {
    "minimalist": dict(lightness=[0.75, 0.98], chroma=[0.0, 0.15], families=["monochrome", "nordic", "cream", "morandi"],
                       font_traits=["minimal", "clean", "modern"], font_categories=["sans"],
                       layouts=L("minimal_stack:1 centered_hero:.6 oversized_type:.4"),
                       source="kobayashi", rationale="'Simple/clean' images sit at the soft-cool, low-chroma end of Kobayashi's scale; few hues, much white."),
    "luxury": dict(lightness=[0.1, 0.45], chroma=[0.0, 0.35], families=["black_gold", "jewel_tones", "monochrome"], hues=H("gold"),
                   font_traits=["luxurious", "elegant", "high-contrast", "classic"], font_categories=["serif"],
                   layouts=L("centered_hero:.8 framed_classic:.9 minimal_stack:.6"),
                   source="kobayashi", rationale="'Gorgeous/dignified' images: dark, deep grounds with gold; high-contrast didone/serif type."),
    "playful": dict(lightness=[0.55, 0.95], chroma=[0.35, 1.0], families=["vivid", "pastel", "neon"],
                    font_traits=["playful", "rounded", "friendly", "bold"], font_categories=["rounded", "display", "handwritten"],
                    layouts=L("diagonal_split:1 asymmetric_right:.8 full_bleed_overlay:.6"),
                    source="ou2004", rationale="High chroma raises Ou's activity factor; 'casual/enjoyable' in Kobayashi."),
    "natural_organic": dict(lightness=[0.45, 0.9], chroma=[0.08, 0.35], temperature=[-0.6, 0.4], families=["earth_tones", "botanical_greens", "cream"],
                            hues=H("olive sage terracotta honey"), font_traits=["natural", "warm", "handmade", "calm"], font_categories=["serif", "handwritten"],
                            layouts=L("window_cutout:.8 centered_hero:.7 badge_seal:.5"),
                            source="kobayashi", rationale="'Natural' image words cluster on greyish greens, browns and beiges (soft-warm quadrant)."),
    "retro_vintage": dict(lightness=[0.45, 0.85], chroma=[0.15, 0.45], families=["vintage", "earth_tones"], hues=H("mustard terracotta teal"),
                          font_traits=["retro", "vintage", "warm", "bold"], font_categories=["slab", "script", "display"],
                          layouts=L("badge_seal:1 framed_classic:.7 top_logo_band:.5"),
                          source="category", rationale="Faded inks on cream stock, seals and slab/script lettering echo 1950-70s packs."),
    "guochao": dict(lightness=[0.3, 0.7], chroma=[0.35, 0.9], temperature=[0.0, 1.6], families=["chinese_red_gold", "jewel_tones", "vivid"],
                    hues=H("red gold jade"), font_traits=["chinese", "calligraphic", "bold", "festive", "traditional"], font_categories=["calligraphy", "display"],
                    layouts=L("vertical_calligraphy:1 framed_classic:.7 oversized_type:.6"),
                    source="cn_culture", rationale="Guochao remixes heritage red/gold/jade and calligraphy with street graphics."),
    "kawaii": dict(lightness=[0.75, 0.97], chroma=[0.12, 0.45], families=["pastel", "vivid"], hues=H("pink peach lavender mint"),
                   font_traits=["cute", "rounded", "soft", "childlike"], font_categories=["rounded", "handwritten"],
                   layouts=L("centered_hero:1 badge_seal:.6 full_bleed_overlay:.4"),
                   source="kobayashi", rationale="'Pretty/charming' images: light, clear pinks and pastels (soft-warm, high lightness)."),
    "bold_graphic": dict(lightness=[0.3, 0.75], chroma=[0.45, 1.2], families=["vivid", "neon", "monochrome"], font_traits=["bold", "condensed", "impactful", "graphic"],
                         font_categories=["display"], layouts=L("oversized_type:1 diagonal_split:.8 horizontal_split:.6"),
                         source="ou2004", rationale="Strong chroma and lightness contrast maximise Ou's activity and heaviness contrast; shelf stand-out."),
    "scandinavian": dict(lightness=[0.7, 0.96], chroma=[0.0, 0.15], temperature=[-1.0, -0.2], families=["nordic", "cream", "morandi"],
                         font_traits=["scandinavian", "clean", "minimal", "geometric"], font_categories=["sans"],
                         layouts=L("minimal_stack:1 top_logo_band:.6 horizontal_split:.5"),
                         source="kobayashi", rationale="'Clear/cool-casual' region: whites, pale greys, muted blue-greens."),
    "futuristic": dict(lightness=[0.1, 0.5], chroma=[0.3, 1.2], temperature=[-1.8, -0.3], families=["neon", "monochrome", "jewel_tones"], hues=H("sky indigo iris mint"),
                       font_traits=["futuristic", "technical", "geometric", "sci-fi"], font_categories=["display", "mono", "sans"],
                       layouts=L("asymmetric_right:1 full_bleed_overlay:.8 oversized_type:.6"),
                       source="kobayashi", rationale="'Modern/sharp' images: cool hues, dark grounds, high contrast (hard-cool quadrant)."),
    "hand_drawn": dict(lightness=[0.55, 0.9], chroma=[0.15, 0.5], families=["vintage", "pastel", "earth_tones"],
                       font_traits=["handmade", "casual", "friendly", "playful"], font_categories=["handwritten", "script"],
                       layouts=L("full_bleed_overlay:.9 centered_hero:.7 diagonal_split:.5"),
                       source="category", rationale="Illustration-led packs use warm imperfect inks and handwritten lettering."),
    "botanical": dict(lightness=[0.5, 0.92], chroma=[0.1, 0.4], families=["botanical_greens", "cream", "morandi"], hues=H("sage jade rose"),
                      font_traits=["elegant", "natural", "delicate"], font_categories=["serif", "script"],
                      layouts=L("full_bleed_overlay:.8 framed_classic:.6 centered_hero:.6"),
                      source="kobayashi", rationale="Leaf greens with blush/cream: 'natural-elegant' region of the image scale."),
    "clinical": dict(lightness=[0.75, 0.98], chroma=[0.0, 0.25], temperature=[-1.6, -0.4], families=["monochrome", "ocean", "nordic"], hues=H("sky denim lagoon mint"),
                     font_traits=["clinical", "technical", "clean", "trustworthy"], font_categories=["sans", "mono"],
                     layouts=L("minimal_stack:1 left_text_column:.9 top_logo_band:.5"),
                     source="category", rationale="Pharma/dermo-cosmetic code: white + cool blue signals hygiene and efficacy."),
    "festive": dict(lightness=[0.3, 0.75], chroma=[0.35, 0.9], temperature=[0.2, 1.6], families=["chinese_red_gold", "jewel_tones", "black_gold"], hues=H("red gold"),
                    font_traits=["festive", "bold", "traditional", "calligraphic"], font_categories=["calligraphy", "display", "serif"],
                    layouts=L("framed_classic:1 centered_hero:.7 badge_seal:.6"),
                    source="cn_culture", rationale="Celebration packs: warm reds and gold, ornament and symmetric framing."),
    "art_deco": dict(lightness=[0.1, 0.5], chroma=[0.1, 0.6], families=["black_gold", "jewel_tones"], hues=H("gold jade teal"),
                     font_traits=["art-deco", "glamorous", "geometric", "luxurious"], font_categories=["display", "serif"],
                     layouts=L("framed_classic:1 badge_seal:.7 centered_hero:.6"),
                     source="category", rationale="1920s deco: gold on black/jewel, symmetric geometric ornament."),
    "eastern_zen": dict(lightness=[0.55, 0.95], chroma=[0.0, 0.2], families=["morandi", "cream", "monochrome"], hues=H("jade sage"),
                        font_traits=["zen", "calligraphic", "calm", "chinese", "delicate"], font_categories=["calligraphy", "serif"],
                        layouts=L("vertical_calligraphy:1 minimal_stack:.8 asymmetric_right:.5"),
                        source="cn_culture", rationale="Ink-wash and rice-paper neutrals, vertical calligraphy, empty space (留白)."),
}


def T(styles="", **kw):
    d = {"styles": S(styles)}
    for k, v in kw.items():
        if k == "hues":
            d["hues"] = H(v)
        elif k == "families":
            d["families"] = v.split()
        elif k in ("font_traits", "font_categories"):
            d[k] = v.split()
        elif k == "layouts":
            d["layouts"] = L(v)
        else:
            d[k] = v
    return d


TERM_K = {
    # ----- products (category conventions)
    "product:beverage": T("playful:.6 bold_graphic:.5 minimalist:.4", chroma=[0.2, 0.7], hues="lemon teal coral", layouts="centered_hero:1 diagonal_split:.7 bottom_text_band:.5", font_traits="friendly energetic modern", source="category", rationale="Drinks sell refreshment: clear, bright colour on the can/bottle hero with a centred product."),
    "product:tea": T("eastern_zen:.8 natural_organic:.7 minimalist:.4 guochao:.3", hues="matcha jade sage", families="botanical_greens morandi cream", layouts="vertical_calligraphy:.9 minimal_stack:.7", font_traits="calm traditional", source="category", rationale="Tea packaging in China draws on leaf greens, rice paper and calligraphy."),
    "product:coffee": T("retro_vintage:.5 minimalist:.5 natural_organic:.5", temperature=[-0.2, 1.0], lightness=[0.15, 0.7], hues="brown amber terracotta", families="earth_tones cream black_gold", layouts="top_logo_band:.8 badge_seal:.7 minimal_stack:.6", font_traits="warm classic", source="category", rationale="Roast browns, cream and black; specialty coffee leans minimal with origin badges."),
    "product:snacks": T("bold_graphic:.7 playful:.8", chroma=[0.4, 1.0], temperature=[0.0, 1.6], hues="red orange yellow", families="vivid", layouts="window_cutout:.9 diagonal_split:.8 oversized_type:.6", font_traits="bold playful energetic", source="category", rationale="Appetite colours (red/orange/yellow) and bold type dominate the snack aisle; windows show the product."),
    "product:confectionery": T("playful:.8 kawaii:.7 festive:.3", chroma=[0.25, 0.8], hues="pink cherry peach lavender", families="pastel vivid", layouts="centered_hero:.8 full_bleed_overlay:.7", font_traits="playful cute rounded", source="category", rationale="Sweet, saturated or candy pastels with rounded letterforms."),
    "product:dairy": T("minimalist:.6 natural_organic:.6 kawaii:.3", lightness=[0.75, 0.98], chroma=[0.0, 0.3], temperature=[-1.2, 0.0], hues="sky denim", families="nordic cream ocean", layouts="centered_hero:.8 top_logo_band:.7", font_traits="friendly clean trustworthy", source="category", rationale="Milk white plus sky blue (and green for pasture) is the near-universal dairy code."),
    "product:cosmetics": T("luxury:.5 minimalist:.6 kawaii:.3 art_deco:.2", hues="rose peony plum", families="morandi pastel black_gold", layouts="minimal_stack:1 centered_hero:.6", font_traits="elegant modern fashion", source="category", rationale="Makeup: skin-adjacent roses and nudes or black/gold prestige, restrained layouts."),
    "product:skincare": T("minimalist:.8 clinical:.7 botanical:.4", lightness=[0.75, 0.98], chroma=[0.0, 0.2], families="nordic morandi cream", layouts="minimal_stack:1 left_text_column:.8", font_traits="clean minimal clinical", source="category", rationale="Skincare favours efficacy cues: white, pale neutrals, tidy ingredient-led typography."),
    "product:fragrance": T("luxury:.8 art_deco:.4 minimalist:.5 botanical:.3", families="black_gold jewel_tones morandi", layouts="minimal_stack:.9 centered_hero:.8 framed_classic:.5", font_traits="elegant luxurious delicate", source="category", rationale="Fragrance cartons are prestige objects: deep grounds, gold, didone serifs."),
    "product:baby_care": T("kawaii:.6 minimalist:.5 clinical:.4", lightness=[0.8, 0.98], chroma=[0.05, 0.3], hues="sky mint peach lemon", families="pastel nordic cream", layouts="centered_hero:1 top_logo_band:.6", font_traits="soft gentle rounded trustworthy", source="category", rationale="Soft pastels and rounded type reassure parents; cleanliness cues."),
    "product:pet_food": T("playful:.6 natural_organic:.6 bold_graphic:.3", hues="orange green teal", families="vivid earth_tones botanical_greens", layouts="asymmetric_right:.9 window_cutout:.7", font_traits="friendly bold", source="category", rationale="Hero pet photography offset to one side, friendly bold type; natural cues for premium lines."),
    "product:household": T("clinical:.6 bold_graphic:.5 minimalist:.5", temperature=[-1.6, -0.3], hues="sky lagoon mint lemon", families="ocean vivid nordic", layouts="top_logo_band:.8 oversized_type:.6 left_text_column:.5", font_traits="clean bold trustworthy", source="category", rationale="Cleaning products: cool blues/greens for freshness, strong claims."),
    "product:electronics": T("futuristic:.8 minimalist:.8", lightness=[0.05, 0.95], chroma=[0.0, 0.3], families="monochrome neon", layouts="minimal_stack:.9 asymmetric_right:.8 full_bleed_overlay:.5", font_traits="technical modern minimal", source="category", rationale="Consumer electronics: device photography on white or black, sparse technical type."),
    "product:toys": T("playful:1 kawaii:.5 bold_graphic:.5", chroma=[0.45, 1.1], families="vivid pastel", layouts="full_bleed_overlay:.9 diagonal_split:.8 window_cutout:.6", font_traits="playful bold rounded childlike", source="category", rationale="Primary colours and energetic compositions speak to children (and pass the toy-aisle test)."),
    "product:wine_spirits": T("luxury:.7 retro_vintage:.5 art_deco:.4", lightness=[0.1, 0.6], families="black_gold jewel_tones vintage", layouts="framed_classic:1 badge_seal:.8 centered_hero:.5", font_traits="classic luxurious traditional", source="category", rationale="Labels borrow heritage: framed cartouches, seals, dark grounds, serif/script."),
    "product:health_supplements": T("clinical:.9 minimalist:.6 natural_organic:.4", lightness=[0.7, 0.98], families="nordic ocean botanical_greens", layouts="left_text_column:.9 top_logo_band:.8", font_traits="clinical trustworthy clean", source="category", rationale="Supplements need trust: white, clinical blue or leaf green, structured information."),
    "product:frozen_food": T("bold_graphic:.5 clinical:.3 playful:.4", temperature=[-1.6, 0.3], hues="sky lagoon red", families="ocean vivid", layouts="bottom_text_band:1 full_bleed_overlay:.7", font_traits="bold clean", source="category", rationale="Cold cues (blue, frost) with appetising full-bleed food photography."),
    "product:bakery": T("hand_drawn:.6 retro_vintage:.5 natural_organic:.5", temperature=[0.0, 1.2], hues="honey amber peach", families="cream earth_tones vintage", layouts="window_cutout:.9 badge_seal:.6", font_traits="warm handmade friendly", source="category", rationale="Golden-brown bake colours, kraft and windows showing the product."),
    "product:stationery": T("minimalist:.6 kawaii:.5 scandinavian:.5 hand_drawn:.3", families="nordic pastel morandi", layouts="minimal_stack:.9 oversized_type:.6", font_traits="minimal modern cute", source="category", rationale="Stationery/文创 sells taste: quiet palettes or cute illustration."),
    "product:apparel": T("minimalist:.7 bold_graphic:.4 scandinavian:.4", families="monochrome cream nordic", layouts="oversized_type:.8 minimal_stack:.8", font_traits="modern fashion minimal", source="category", rationale="Apparel packaging is brand-led: monochrome, large wordmarks."),
    "product:ice_cream": T("playful:.7 kawaii:.5 bold_graphic:.3", lightness=[0.6, 0.95], hues="pink mint lemon sky", families="pastel vivid", layouts="centered_hero:.8 diagonal_split:.8", font_traits="playful rounded friendly", source="category", rationale="Ice cream: cool pastels and flavour colours, playful script/rounded type."),
    "product:craft_beer": T("bold_graphic:.6 hand_drawn:.6 retro_vintage:.5", chroma=[0.3, 0.9], families="vivid vintage neon", layouts="full_bleed_overlay:1 badge_seal:.6", font_traits="bold retro quirky", source="category", rationale="Craft beer cans are art canvases: full-bleed illustration and bold lettering."),
    "product:mooncake": T("festive:.8 guochao:.7 luxury:.5", families="chinese_red_gold black_gold jewel_tones", hues="red gold jade", layouts="framed_classic:1 vertical_calligraphy:.8", font_traits="traditional calligraphic festive", source="cn_culture", rationale="Mooncake gift boxes: red/gold/jade, moon and rabbit motifs, framed centred labels."),
    "product:condiments": T("retro_vintage:.5 bold_graphic:.5 guochao:.3", temperature=[0.2, 1.6], hues="red orange mustard", families="vivid earth_tones vintage", layouts="badge_seal:.8 top_logo_band:.8", font_traits="bold traditional", source="category", rationale="Sauces and spices use hot reds/ochres and heritage badges."),
    "product:instant_noodles": T("bold_graphic:.8 playful:.5", chroma=[0.45, 1.1], temperature=[0.2, 1.6], hues="red orange yellow", families="vivid", layouts="bottom_text_band:.9 oversized_type:.7", font_traits="bold impactful energetic", source="category", rationale="Big bowl photography, hot reds and oversized flavour callouts."),
    "product:personal_care": T("minimalist:.6 clinical:.5 botanical:.4", lightness=[0.7, 0.97], families="nordic ocean pastel", layouts="minimal_stack:.9 left_text_column:.6", font_traits="clean gentle", source="category", rationale="Shampoo/body wash: clean pastels and cool blues with simple type."),
    "product:jewellery": T("luxury:.9 art_deco:.5 minimalist:.4", families="black_gold jewel_tones monochrome", layouts="minimal_stack:1 centered_hero:.6", font_traits="luxurious elegant delicate", source="category", rationale="Jewellery boxes: dark, velvety grounds, gold foil, tiny refined type."),
    "product:fresh_produce": T("natural_organic:.8 botanical:.5 hand_drawn:.3", hues="green lemon red", families="botanical_greens earth_tones vivid", layouts="window_cutout:1 bottom_text_band:.6", font_traits="natural friendly", source="category", rationale="Produce shows itself: windows, greens and farm cues."),
    "product:home_fragrance": T("botanical:.6 luxury:.5 scandinavian:.4 eastern_zen:.3", families="morandi cream botanical_greens", layouts="minimal_stack:.9 framed_classic:.5", font_traits="elegant calm delicate", source="category", rationale="Candles/diffusers: calm neutrals and botanical cues, lifestyle-oriented."),
    # ----- audiences
    "audience:young_women": T("kawaii:.5 botanical:.4 minimalist:.5 luxury:.3", hues="rose peony lavender peach", families="morandi pastel cream", font_traits="elegant feminine delicate modern", layouts="minimal_stack:.6 centered_hero:.6", source="category", rationale="Category research (and Kobayashi's 'romantic/elegant' words) favour soft roses, muted pastels, refined type."),
    "audience:gen_z": T("bold_graphic:.6 playful:.6 futuristic:.4 guochao:.4", chroma=[0.3, 1.1], families="vivid neon pastel", font_traits="youthful bold quirky streetwear", layouts="oversized_type:.8 diagonal_split:.7 asymmetric_right:.6", source="category", rationale="Gen Z: dopamine colour, type-led, meme-able graphics, guochao pride."),
    "audience:kids": T("playful:1 kawaii:.6", chroma=[0.4, 1.1], lightness=[0.55, 0.95], families="vivid pastel", font_traits="childlike playful rounded", font_categories="rounded handwritten", layouts="full_bleed_overlay:.8 centered_hero:.7", source="ou2004", rationale="Children prefer saturated, light colours (high activity); rounded letterforms read as friendly."),
    "audience:parents": T("minimalist:.4 clinical:.4 natural_organic:.5", lightness=[0.7, 0.97], families="nordic cream pastel", font_traits="trustworthy gentle clean", layouts="top_logo_band:.7 centered_hero:.6", source="category", rationale="Parents buy safety and honesty: soft clean palettes and clear information."),
    "audience:seniors": T("clinical:.4 retro_vintage:.4 natural_organic:.4", families="earth_tones ocean vintage", font_traits="readable trustworthy classic", layouts="top_logo_band:.9 left_text_column:.6", source="wcag", rationale="Older readers need larger type and higher contrast (WCAG); familiar, classic forms."),
    "audience:men": T("bold_graphic:.5 minimalist:.5 luxury:.3 futuristic:.3", lightness=[0.1, 0.6], temperature=[-1.6, 0.2], families="monochrome black_gold ocean", font_traits="bold condensed modern", layouts="oversized_type:.7 asymmetric_right:.6", source="category", rationale="Men's grooming codes: dark/cool palettes, condensed sans, strong blocks."),
    "audience:professionals": T("minimalist:.8 clinical:.4 luxury:.3", chroma=[0.0, 0.25], families="monochrome nordic cream", font_traits="modern clean trustworthy", layouts="minimal_stack:.9 left_text_column:.6", source="kobayashi", rationale="'Urbane/modern' image words: greys, navy, restrained colour."),
    "audience:luxury_buyers": T("luxury:1 art_deco:.5 minimalist:.4", families="black_gold jewel_tones monochrome", font_traits="luxurious elegant high-contrast", layouts="centered_hero:.7 framed_classic:.7 minimal_stack:.7", source="kobayashi", rationale="'Gorgeous/dignified': dark grounds, metallic gold, symmetric centred layouts."),
    "audience:students": T("playful:.6 hand_drawn:.5 bold_graphic:.4", families="vivid pastel", font_traits="youthful friendly casual", layouts="diagonal_split:.7 full_bleed_overlay:.6", source="category", rationale="Affordable fun: bright palettes, doodles, casual type."),
    "audience:eco_conscious": T("natural_organic:1 botanical:.6 minimalist:.5", chroma=[0.05, 0.35], families="earth_tones botanical_greens cream", font_traits="natural handmade calm", layouts="window_cutout:.7 minimal_stack:.6", source="category", rationale="Kraft, earth and leaf tones, low ink coverage signal sustainability."),
    "audience:fitness": T("bold_graphic:.8 futuristic:.4 clinical:.3", chroma=[0.3, 1.0], families="neon monochrome vivid", font_traits="sporty condensed energetic bold", layouts="oversized_type:.9 diagonal_split:.7", source="category", rationale="Sports nutrition: black with electric accents, condensed italics, diagonal energy."),
    "audience:gamers": T("futuristic:1 bold_graphic:.6", lightness=[0.05, 0.45], families="neon monochrome", hues="iris mint indigo", font_traits="futuristic cyberpunk technical", layouts="asymmetric_right:.8 full_bleed_overlay:.7", source="category", rationale="Gaming: RGB neon on black, angular tech type."),
    "audience:pet_owners": T("playful:.6 natural_organic:.5 kawaii:.4", families="vivid earth_tones pastel", font_traits="friendly rounded", layouts="asymmetric_right:.8 centered_hero:.6", source="category", rationale="Pet parents respond to warm, friendly, pet-first imagery."),
    "audience:foodies": T("hand_drawn:.5 natural_organic:.5 retro_vintage:.4", temperature=[0.0, 1.4], families="earth_tones vintage vivid", font_traits="warm handmade editorial", layouts="window_cutout:.7 bottom_text_band:.7", source="category", rationale="Gourmet cues: appetising warm colour, crafted lettering, product visibility."),
    "audience:millennials": T("minimalist:.6 scandinavian:.5 botanical:.4", families="morandi nordic cream pastel", font_traits="modern minimal clean", layouts="minimal_stack:.8 centered_hero:.5", source="category", rationale="'Millennial pink' era: muted pastels, flat sans, white space."),
    # ----- moods
    "mood:fresh": T("minimalist:.4 botanical:.4 playful:.3", lightness=[0.7, 0.98], chroma=[0.1, 0.5], temperature=[-1.6, -0.2], hues="mint lemon sea_glass sky", families="pastel ocean botanical_greens", font_traits="clean friendly", source="kobayashi", rationale="'Fresh/clean' words cluster on light cool greens, aquas and lemon; Ou: cool + light."),
    "mood:calm": T("minimalist:.5 scandinavian:.5 eastern_zen:.5", chroma=[0.0, 0.2], lightness=[0.6, 0.95], temperature=[-1.2, -0.2], hues="sea_glass sage sky", families="morandi nordic", font_traits="calm delicate", layouts="minimal_stack:.8", source="ou2004", rationale="Low chroma lowers Ou's activity factor (passive); soft-cool Kobayashi quadrant."),
    "mood:playful": T("playful:1 kawaii:.4", chroma=[0.4, 1.1], families="vivid pastel", font_traits="playful rounded quirky", layouts="diagonal_split:.8", source="ou2004", rationale="High chroma and hue variety = active; Kobayashi 'enjoyable'."),
    "mood:premium": T("luxury:1 minimalist:.5 art_deco:.3", lightness=[0.08, 0.5], chroma=[0.0, 0.35], families="black_gold jewel_tones monochrome morandi", font_traits="luxurious elegant", layouts="minimal_stack:.7 centered_hero:.7", source="kobayashi", rationale="'Dignified/elegant': dark or greyed tones, restrained colour count (高级感 = muted, low-chroma)."),
    "mood:bold": T("bold_graphic:1 playful:.3", chroma=[0.5, 1.2], families="vivid neon", font_traits="bold impactful condensed", layouts="oversized_type:1", source="ou2004", rationale="Heavy + active: saturated colour with strong lightness contrast."),
    "mood:natural": T("natural_organic:1 botanical:.6", chroma=[0.08, 0.35], hues="olive sage terracotta", families="earth_tones botanical_greens cream", font_traits="natural handmade", source="kobayashi", rationale="'Natural' = greyish greens/browns (soft-warm)."),
    "mood:nostalgic": T("retro_vintage:1 hand_drawn:.3", chroma=[0.15, 0.45], families="vintage earth_tones", font_traits="retro vintage", layouts="badge_seal:.8", source="kobayashi", rationale="'Classic/nostalgic': dull warm tones, faded inks (Kobayashi's 'classic' region)."),
    "mood:futuristic": T("futuristic:1", lightness=[0.05, 0.5], temperature=[-1.8, -0.3], families="neon monochrome", hues="sky iris mint", font_traits="futuristic technical sci-fi", source="kobayashi", rationale="'Modern/sharp': cool, dark, high contrast."),
    "mood:cute": T("kawaii:1 playful:.5", lightness=[0.75, 0.97], families="pastel", hues="pink peach lavender", font_traits="cute rounded soft", source="kobayashi", rationale="'Pretty/charming': light clear pinks/peaches."),
    "mood:elegant": T("luxury:.6 botanical:.4 minimalist:.4 art_deco:.3", chroma=[0.0, 0.3], families="morandi black_gold cream jewel_tones", font_traits="elegant delicate classic", source="kobayashi", rationale="'Elegant': greyish purples and roses, soft contrast."),
    "mood:energetic": T("bold_graphic:.7 playful:.7", chroma=[0.5, 1.2], temperature=[0.0, 1.6], families="vivid neon", hues="orange red lemon", font_traits="energetic bold sporty", layouts="diagonal_split:1", source="ou2004", rationale="Warm, saturated = active/warm in Ou's three-factor model; diagonals imply motion."),
    "mood:warm": T("natural_organic:.5 hand_drawn:.4 retro_vintage:.3", temperature=[0.0, 1.6], hues="amber peach terracotta honey", families="earth_tones cream", font_traits="warm friendly", source="ou2004", rationale="Ou warm-cool index: reds/oranges/yellows of medium-high chroma are warm."),
    "mood:cool": T("minimalist:.4 futuristic:.3 clinical:.3", temperature=[-1.8, -0.5], hues="sky lagoon mint indigo", families="ocean nordic", font_traits="clean modern", source="ou2004", rationale="Ou warm-cool index: blues/cyans are cool."),
    "mood:minimal": T("minimalist:1 scandinavian:.5", chroma=[0.0, 0.15], families="monochrome nordic cream", font_traits="minimal clean", font_categories="sans", layouts="minimal_stack:1", source="kobayashi", rationale="Few colours, low chroma, lots of white (Kobayashi 'simple')."),
    "mood:festive": T("festive:1 guochao:.4", temperature=[0.3, 1.6], hues="red gold", families="chinese_red_gold jewel_tones", font_traits="festive bold", layouts="framed_classic:.8", source="cn_culture", rationale="Celebration = warm saturated red and gold."),
    "mood:romantic": T("botanical:.5 kawaii:.4 luxury:.3", hues="rose peony lavender", families="pastel morandi", font_traits="romantic feminine delicate", font_categories="script serif", source="kobayashi", rationale="'Romantic': pale pinks and lavenders, soft contrast, script type."),
    "mood:sweet": T("kawaii:.8 playful:.5", hues="pink peach cherry", lightness=[0.7, 0.97], families="pastel", font_traits="cute rounded", source="kobayashi", rationale="'Sweet/pretty': light, warm pinks."),
    "mood:mysterious": T("luxury:.5 futuristic:.5 art_deco:.3", lightness=[0.05, 0.35], hues="plum indigo iris", families="jewel_tones black_gold", font_traits="elegant high-contrast", source="ou2004", rationale="Dark, cool-purple tones are heavy and passive (Ou)."),
    "mood:traditional": T("guochao:.5 retro_vintage:.5 festive:.3 eastern_zen:.4", families="chinese_red_gold vintage earth_tones", font_traits="traditional classic calligraphic", layouts="framed_classic:.9 vertical_calligraphy:.6", source="cn_culture", rationale="Heritage cues: framing, seals, calligraphy."),
    "mood:healthy": T("natural_organic:.7 clinical:.4 botanical:.4", lightness=[0.6, 0.97], hues="green lemon mint", families="botanical_greens pastel", font_traits="clean friendly natural", source="category", rationale="Health halo: greens and light backgrounds."),
    "mood:gentle": T("minimalist:.5 kawaii:.3 botanical:.3", lightness=[0.75, 0.98], chroma=[0.0, 0.25], families="pastel morandi cream", font_traits="gentle soft", source="kobayashi", rationale="'Soft/gentle': light, low-chroma tints."),
    "mood:trustworthy": T("clinical:.8 minimalist:.5", hues="denim sky", families="ocean nordic monochrome", font_traits="trustworthy clean", layouts="top_logo_band:.6 left_text_column:.6", source="kobayashi", rationale="Blue is the most consistently trusted brand colour; orderly layouts."),
    "mood:artistic": T("hand_drawn:.6 art_deco:.3 bold_graphic:.3", families="vintage jewel_tones vivid", font_traits="artistic expressive quirky", layouts="full_bleed_overlay:1 asymmetric_right:.6", source="category", rationale="文艺/art packs: illustration canvas, expressive type."),
    "mood:rustic": T("natural_organic:.8 retro_vintage:.6 hand_drawn:.4", temperature=[-0.3, 1.0], families="earth_tones vintage cream", font_traits="rustic handmade sturdy", font_categories="slab handwritten", layouts="badge_seal:.8", source="category", rationale="Farmhouse: kraft, earthy browns, slab/stamp type."),
    # ----- seasons
    "season:summer_limited": T("playful:.5 minimalist:.3", lightness=[0.65, 0.98], temperature=[-1.6, 0.2], hues="lemon mint sea_glass sky", families="pastel ocean vivid", font_traits="summery friendly", source="kobayashi", rationale="Summer editions: light, cool, 'clear' colours - aqua, mint, lemon."),
    "season:winter": T("scandinavian:.6 festive:.3 minimalist:.4", temperature=[-1.8, -0.3], lightness=[0.6, 0.98], hues="sky denim", families="nordic ocean monochrome", source="kobayashi", rationale="Winter: cool whites, icy blues, deep greens."),
    "season:spring": T("botanical:.7 kawaii:.4", lightness=[0.7, 0.97], hues="peony matcha lemon", families="pastel botanical_greens", font_traits="delicate friendly", source="kobayashi", rationale="Spring: light yellow-greens and blossom pinks ('pretty/fresh')."),
    "season:autumn": T("natural_organic:.6 retro_vintage:.4", temperature=[0.0, 1.4], hues="terracotta amber mustard olive", families="earth_tones vintage", font_traits="warm", source="kobayashi", rationale="Autumn: russet, ochre, olive (warm, dull)."),
    # ----- occasions
    "occasion:chinese_new_year": T("festive:1 guochao:.7", salience=4.0, temperature=[0.3, 1.6], hues="red gold", families="chinese_red_gold", font_traits="festive calligraphic chinese", layouts="framed_classic:.9 vertical_calligraphy:.8", source="cn_culture", rationale="春节: red for luck, gold for prosperity, calligraphic 福."),
    "occasion:mid_autumn": T("festive:.6 guochao:.6 eastern_zen:.4 luxury:.4", hues="gold indigo jade", families="chinese_red_gold jewel_tones black_gold", font_traits="traditional calligraphic", layouts="framed_classic:.8 vertical_calligraphy:.8", source="cn_culture", rationale="中秋: moon gold on night indigo, jade and red gift cues."),
    "occasion:christmas": T("festive:1", hues="red green gold", families="jewel_tones chinese_red_gold", font_traits="festive classic", layouts="framed_classic:.8 centered_hero:.6", source="category", rationale="Christmas: red, pine green, gold; ornamental frames."),
    "occasion:valentines": T("kawaii:.5 luxury:.4 botanical:.3", hues="rose cherry peony", families="pastel jewel_tones", font_traits="romantic feminine", font_categories="script", source="kobayashi", rationale="Valentine/七夕: rose reds and pinks, script type."),
    "occasion:gift": T("luxury:.6 festive:.5", families="black_gold jewel_tones chinese_red_gold", font_traits="elegant luxurious", layouts="framed_classic:.9 centered_hero:.6", source="category", rationale="礼盒: upgrade cues - deep colour, foil, framing."),
    "occasion:back_to_school": T("playful:.7 bold_graphic:.4 hand_drawn:.3", families="vivid", hues="lemon sky red", font_traits="youthful friendly", layouts="diagonal_split:.7", source="category", rationale="Primary colours and doodles."),
    "occasion:halloween": T("playful:.5 bold_graphic:.4", lightness=[0.05, 0.5], hues="orange purple", families="neon jewel_tones", font_traits="quirky bold", source="category", rationale="Orange and black/purple."),
    "occasion:shopping_festival": T("bold_graphic:.8 playful:.5", chroma=[0.5, 1.2], temperature=[0.2, 1.6], hues="red orange", families="vivid neon", font_traits="bold impactful", layouts="oversized_type:.9", source="category", rationale="Promotion packs shout: red, big numerals."),
    "occasion:dragon_boat": T("guochao:.6 festive:.4 natural_organic:.4", hues="jade matcha", families="botanical_greens chinese_red_gold", font_traits="traditional calligraphic", layouts="vertical_calligraphy:.8", source="cn_culture", rationale="端午: bamboo-leaf green (zongzi) with red accents."),
    "occasion:wedding": T("luxury:.5 festive:.5 botanical:.3", hues="red gold rose", families="chinese_red_gold pastel black_gold", font_traits="romantic elegant festive", layouts="framed_classic:.9", source="cn_culture", rationale="喜糖/wedding: double-happiness red and gold or blush and ivory."),
    "occasion:limited_edition": T("bold_graphic:.5 art_deco:.3 futuristic:.3", font_traits="bold modern", layouts="oversized_type:.7 full_bleed_overlay:.6", source="category", rationale="Limited/collab editions break the range design: full-bleed artwork, bold marks."),
    # ----- palette families (direct)
    "palette:morandi": T("minimalist:.4 eastern_zen:.3", families="morandi", chroma=[0.0, 0.18], source="kobayashi", rationale="Morandi = greyed, muted mid-light tones (low chroma)."),
    "palette:pastel": T("kawaii:.5", families="pastel", lightness=[0.75, 0.98], source="kobayashi", rationale="Pastel/macaron = high lightness, low-mid chroma tints."),
    "palette:earth_tones": T("natural_organic:.6", families="earth_tones", hues="terracotta olive amber", source="kobayashi", rationale="Earth tones = dull warm browns/ochres/olives."),
    "palette:neon": T("futuristic:.5 bold_graphic:.5", families="neon", chroma=[0.5, 1.3], source="ou2004", rationale="Neon = maximal chroma on dark grounds."),
    "palette:jewel_tones": T("luxury:.5 art_deco:.4", families="jewel_tones", source="kobayashi", rationale="Jewel tones = deep, saturated emerald/ruby/sapphire."),
    "palette:monochrome": T("minimalist:.6", families="monochrome", chroma=[0.0, 0.12], source="kobayashi", rationale="Monochrome = near-achromatic."),
    "palette:vintage": T("retro_vintage:.7", families="vintage", source="kobayashi", rationale="Vintage = faded warm inks on cream."),
    "palette:nordic": T("scandinavian:.8", families="nordic", source="kobayashi", rationale="Nordic = pale neutrals with muted accents."),
    "palette:chinese_red_gold": T("guochao:.6 festive:.6", families="chinese_red_gold", hues="red gold", source="cn_culture", rationale="中国红 + 金."),
    "palette:black_gold": T("luxury:.8", families="black_gold", source="kobayashi", rationale="Black + gold = 'gorgeous/dignified'."),
    "palette:vivid": T("playful:.6 bold_graphic:.5", families="vivid", chroma=[0.45, 1.2], source="ou2004", rationale="Vivid/多巴胺 = high chroma, many hues."),
    "palette:ocean": T("clinical:.3 minimalist:.2", families="ocean", hues="lagoon sea_glass denim", source="kobayashi", rationale="Ocean = blues and aquas with sand."),
    "palette:botanical_greens": T("botanical:.7 natural_organic:.5", families="botanical_greens", hues="sage jade matcha", source="kobayashi", rationale="Leaf greens."),
    "palette:cream": T("minimalist:.4 scandinavian:.3", families="cream", lightness=[0.6, 0.95], chroma=[0.0, 0.2], source="kobayashi", rationale="Cream/beige warm neutrals."),
    # ----- free keywords
    "keyword:guochao": T("guochao:1 festive:.3", salience=6.0, families="chinese_red_gold jewel_tones", hues="red gold jade", font_traits="chinese calligraphic bold", layouts="vertical_calligraphy:.8 oversized_type:.6", source="cn_culture", rationale="国潮/新中式: heritage colour and calligraphy, remixed."),
    "keyword:eco_friendly": T("natural_organic:1", families="earth_tones botanical_greens cream", chroma=[0.05, 0.3], font_traits="natural handmade", layouts="window_cutout:.6", source="category", rationale="Low ink, kraft, leaf and earth hues."),
    "keyword:handmade": T("hand_drawn:.8 natural_organic:.5", families="earth_tones vintage cream", font_traits="handmade casual", font_categories="handwritten", source="category", rationale="手作/匠心: craft textures, handwriting."),
    "keyword:cyberpunk": T("futuristic:1 bold_graphic:.4", families="neon", hues="magenta iris mint", lightness=[0.05, 0.4], font_traits="cyberpunk futuristic", layouts="full_bleed_overlay:.7", source="category", rationale="Magenta/cyan neon on black."),
    "keyword:illustration": T("hand_drawn:1 playful:.4", font_traits="handmade playful", layouts="full_bleed_overlay:1", source="category", rationale="插画: illustration fills the panel."),
    "keyword:typography": T("bold_graphic:.6 minimalist:.5", font_traits="bold editorial", layouts="oversized_type:1", source="gestalt", rationale="Type-led layouts let the word be the image."),
    "keyword:photography": T("minimalist:.5", layouts="bottom_text_band:1 full_bleed_overlay:.7", source="gestalt", rationale="Photo-led packs reserve a band for type."),
    "keyword:gradient": T("futuristic:.6 playful:.4", families="neon vivid pastel", font_traits="modern geometric", source="category", rationale="Gradients: digital-native, luminous."),
    "keyword:geometric": T("bold_graphic:.6 art_deco:.4 scandinavian:.4", font_traits="geometric", layouts="diagonal_split:.7", source="category", rationale="Geometric pattern/type."),
    "keyword:floral": T("botanical:1 kawaii:.3", hues="rose peony sage", families="botanical_greens pastel", font_traits="delicate romantic", layouts="full_bleed_overlay:.8 framed_classic:.5", source="category", rationale="Florals: blush and leaf."),
    "keyword:fruity": T("playful:.7", hues="lemon peach orange cherry", families="vivid pastel", chroma=[0.35, 1.0], font_traits="friendly summery", source="category", rationale="Flavour colours of fruit."),
    "keyword:window": T("natural_organic:.3", layouts="window_cutout:1", source="gestalt", rationale="Die-cut window shows the product."),
    "keyword:metallic": T("luxury:.7 art_deco:.5 festive:.3", hues="gold", families="black_gold chinese_red_gold", font_traits="luxurious", source="category", rationale="烫金 foil is a premium cue."),
    "keyword:holographic": T("futuristic:.7 playful:.3", families="neon pastel", font_traits="futuristic", source="category", rationale="Iridescent film: Y2K/tech."),
    "keyword:matte": T("minimalist:.6 luxury:.3", chroma=[0.0, 0.25], families="morandi monochrome", font_traits="minimal", source="category", rationale="Matte/soft-touch finishes pair with muted tones."),
    "keyword:pattern": T("playful:.4 retro_vintage:.4 scandinavian:.3", layouts="full_bleed_overlay:1", source="gestalt", rationale="All-over print: pattern covers the panel, label overlays."),
    "keyword:mascot": T("kawaii:.8 playful:.7", font_traits="cute rounded", layouts="centered_hero:.9 asymmetric_right:.5", source="category", rationale="IP character as hero."),
    "keyword:cartoon": T("playful:.8 kawaii:.6 hand_drawn:.4", families="vivid pastel", font_traits="playful childlike", layouts="full_bleed_overlay:.8", source="category", rationale="Cartoon/comic styling."),
    "keyword:ink_wash": T("eastern_zen:1 guochao:.4", families="monochrome morandi cream", chroma=[0.0, 0.15], font_traits="zen calligraphic", layouts="vertical_calligraphy:1 asymmetric_right:.6", source="cn_culture", rationale="水墨: ink tones, empty space, vertical calligraphy."),
    "keyword:paper_cut": T("guochao:.7 festive:.7", hues="red", families="chinese_red_gold", font_traits="festive traditional", layouts="framed_classic:.7 full_bleed_overlay:.6", source="cn_culture", rationale="剪纸/窗花: red cut-paper motifs."),
    "keyword:clinical": T("clinical:1 minimalist:.5", families="nordic ocean monochrome", font_traits="clinical technical", layouts="left_text_column:1", source="category", rationale="成分党: ingredient-led, clinical layout."),
    "keyword:sporty": T("bold_graphic:.8 futuristic:.3", chroma=[0.4, 1.2], families="neon vivid monochrome", font_traits="sporty condensed", layouts="diagonal_split:.9", source="category", rationale="Motion: diagonals, condensed italics, bright accents."),
    "keyword:outdoor": T("natural_organic:.7 retro_vintage:.3 bold_graphic:.3", families="earth_tones botanical_greens", hues="olive terracotta", font_traits="sturdy bold", layouts="badge_seal:.8", source="category", rationale="Camping gear: olive, orange, badges."),
    "keyword:streetwear": T("bold_graphic:.8 guochao:.3", families="monochrome neon vivid", font_traits="streetwear bold urban", layouts="oversized_type:.9", source="category", rationale="潮牌: black/white with one loud accent, huge type."),
    "keyword:y2k": T("futuristic:.5 playful:.6 kawaii:.3", families="neon pastel", hues="iris pink sky", font_traits="quirky futuristic youthful", source="category", rationale="千禧风: chrome, iridescent pastels, bubble type."),
    "keyword:art_deco": T("art_deco:1 luxury:.4", families="black_gold jewel_tones", font_traits="art-deco glamorous", layouts="framed_classic:.9", source="category", rationale="Deco ornament in gold."),
    "keyword:zen": T("eastern_zen:1 minimalist:.5", families="morandi cream", chroma=[0.0, 0.15], font_traits="zen calm", layouts="vertical_calligraphy:.7 minimal_stack:.8", source="cn_culture", rationale="禅意/侘寂: quiet neutrals, empty space."),
    "keyword:kraft": T("natural_organic:.9 retro_vintage:.4", families="earth_tones cream", hues="amber honey", font_traits="rustic natural", layouts="badge_seal:.7", source="category", rationale="Kraft stock reads natural/recycled."),
}


# ---------------------------------------------------------------- issue 15: vocabulary growth
# New everyday products, life-stage audiences, moods, trend/style words and festivals, mapped onto the
# same 16 styles, 14 palette families and font traits (no new catalogue entries needed). Trend words that name a
# colour scheme (Barbiecore, 多巴胺) get salience 3: like a named palette they decide the colour even next to a
# product whose category code says otherwise (多巴胺 used to be a synonym of palette:vivid).
TERM_K.update({
    # ----- products
    "product:energy_drink": T("bold_graphic:1 futuristic:.6 playful:.3", lightness=[0.05, 0.6], chroma=[0.4, 1.2], hues="lemon mint red sky", families="neon vivid monochrome", font_traits="bold condensed energetic sporty impactful", font_categories="display", layouts="oversized_type:1 diagonal_split:.8", source="category", rationale="Energy/sports drinks: black or metallic cans with one electric accent, condensed italic type and diagonal motion."),
    "product:bottled_water": T("minimalist:1 clinical:.5 scandinavian:.4", lightness=[0.8, 0.98], chroma=[0.0, 0.2], temperature=[-1.8, -0.4], hues="sky lagoon sea_glass", families="ocean nordic monochrome", font_traits="clean minimal", layouts="minimal_stack:1 centered_hero:.6", source="category", rationale="Water sells purity: clear and white with ice blue, a spring or mountain line drawing, sparse type."),
    "product:plant_milk": T("natural_organic:.8 minimalist:.6 botanical:.4 playful:.3", lightness=[0.7, 0.97], chroma=[0.05, 0.35], hues="honey amber sage matcha", families="cream earth_tones botanical_greens", font_traits="friendly natural clean", layouts="centered_hero:.8 oversized_type:.6", source="category", rationale="Oat/soy/almond milks: oat beige and cream with leaf accents, friendly type-led cartons."),
    "product:protein_powder": T("bold_graphic:.9 futuristic:.4 clinical:.4", lightness=[0.05, 0.5], chroma=[0.0, 0.8], families="monochrome neon black_gold", font_traits="bold condensed sporty impactful", font_categories="display", layouts="oversized_type:1 top_logo_band:.6", source="category", rationale="Sports-nutrition tubs: black or metallic grounds, a flavour-colour band, huge condensed claims."),
    "product:baby_formula": T("clinical:.7 kawaii:.5 minimalist:.5", lightness=[0.8, 0.98], chroma=[0.05, 0.3], temperature=[-1.2, 0.2], hues="sky lemon peach", families="pastel nordic cream", font_traits="trustworthy gentle rounded clean", layouts="top_logo_band:.9 centered_hero:.7", source="category", rationale="Formula is a trust purchase: white cans, soft blue or gold, mother-and-baby line art, clear stage numbers."),
    "product:cereal": T("playful:.7 bold_graphic:.5 natural_organic:.5", temperature=[0.0, 1.4], hues="honey amber lemon red", families="vivid earth_tones cream", font_traits="friendly bold playful", layouts="bottom_text_band:.9 window_cutout:.6", source="category", rationale="Cereal boxes: warm grain colours and a bowl shot; granola/oats lean natural, kids' lines loud."),
    "product:biscuits": T("playful:.5 retro_vintage:.5 hand_drawn:.4 festive:.2", temperature=[0.0, 1.3], hues="honey amber cherry", families="vintage cream vivid", font_traits="warm friendly retro", layouts="window_cutout:.8 centered_hero:.7", source="category", rationale="Biscuits/cookies: golden-bake colours, heritage tin styling or bright kids' packs, windows to show texture."),
    "product:honey": T("natural_organic:.8 retro_vintage:.5 hand_drawn:.4", temperature=[0.2, 1.4], hues="honey amber mustard", families="earth_tones vintage cream", font_traits="warm handmade rustic", layouts="badge_seal:.9 window_cutout:.7", source="category", rationale="Honey and jam jars: the amber product shows through glass; farm labels, seals and kraft."),
    "product:rice_grains": T("natural_organic:1 eastern_zen:.3 retro_vintage:.3", temperature=[-0.2, 1.2], hues="honey olive matcha", families="earth_tones cream botanical_greens", font_traits="natural trustworthy traditional", font_categories="calligraphy serif", layouts="window_cutout:.9 vertical_calligraphy:.6 badge_seal:.6", source="category", rationale="Rice and grain sacks: paddy green and grain gold, origin seals, calligraphic brand names."),
    "product:seafood": T("natural_organic:.5 clinical:.4 minimalist:.4 bold_graphic:.3", temperature=[-1.6, 0.0], hues="lagoon denim coral", families="ocean nordic vivid", font_traits="clean bold", layouts="window_cutout:.8 bottom_text_band:.7", source="category", rationale="Seafood: sea blues with a coral/red accent signal catch-freshness; windows or photography show the product."),
    "product:meat_snacks": T("bold_graphic:.8 guochao:.4 retro_vintage:.4", temperature=[0.3, 1.6], chroma=[0.4, 1.0], hues="red cinnabar amber", families="vivid chinese_red_gold earth_tones", font_traits="bold impactful traditional", layouts="window_cutout:.8 oversized_type:.7", source="category", rationale="Jerky and 卤味: appetite reds and braise browns, spicy cues, bold names and windows."),
    "product:haircare": T("botanical:.6 minimalist:.6 clinical:.4", lightness=[0.6, 0.97], hues="sage mint lavender", families="botanical_greens nordic pastel", font_traits="clean gentle natural", layouts="minimal_stack:.9 left_text_column:.6", source="category", rationale="Shampoo/conditioner: botanical ingredient stories or salon-clean minimal bottles."),
    "product:oral_care": T("clinical:1 minimalist:.5", lightness=[0.75, 0.98], temperature=[-1.8, -0.4], hues="sky lagoon mint", families="ocean nordic monochrome", font_traits="clinical clean trustworthy", layouts="left_text_column:.8 top_logo_band:.8", source="category", rationale="Toothpaste: mint, blue and white read fresh and hygienic; dentist-backed claims."),
    "product:sunscreen": T("clinical:.6 minimalist:.5 playful:.4", lightness=[0.7, 0.98], temperature=[-1.4, 0.4], hues="sky lemon coral", families="ocean pastel vivid", font_traits="clean summery", layouts="top_logo_band:.7 left_text_column:.7", source="category", rationale="Sun care: summer-sky blue with sun yellow/orange accents and a prominent SPF callout."),
    "product:phone_accessories": T("minimalist:.7 futuristic:.6 playful:.4 kawaii:.3", chroma=[0.0, 0.5], families="monochrome neon pastel", font_traits="modern technical minimal", layouts="minimal_stack:.8 centered_hero:.8", source="category", rationale="Accessory boxes: product on white or black; cases and chargers for young buyers lean cute and trendy."),
    "product:headphones": T("futuristic:.8 minimalist:.8 bold_graphic:.3", lightness=[0.05, 0.95], chroma=[0.0, 0.35], families="monochrome neon nordic", font_traits="technical modern minimal", layouts="centered_hero:.9 asymmetric_right:.7", source="category", rationale="Audio: the device as hero on black or white, sparse technical type, one accent colour."),
    "product:books": T("minimalist:.6 hand_drawn:.5 retro_vintage:.4", families="cream vintage morandi", font_traits="literary editorial classic", font_categories="serif", layouts="oversized_type:.8 framed_classic:.6 minimal_stack:.6", source="category", rationale="Book design: type-led covers, literary serifs, paper tones; picture books illustration-led."),
    "product:flowers": T("botanical:1 natural_organic:.4 kawaii:.3", lightness=[0.6, 0.96], hues="rose peony sage", families="botanical_greens pastel cream", font_traits="delicate romantic elegant", font_categories="script serif", layouts="window_cutout:.8 full_bleed_overlay:.6", source="category", rationale="Florist wraps: cream/kraft with blush and leaf green, script type."),
    "product:kitchenware": T("minimalist:.7 scandinavian:.7 natural_organic:.4", chroma=[0.0, 0.2], families="nordic cream monochrome", font_traits="clean minimal scandinavian", layouts="centered_hero:.8 minimal_stack:.8", source="category", rationale="Cookware/tableware: the object on a pale ground, Scandinavian restraint, small clean type."),
    "product:otc_medicine": T("clinical:1 minimalist:.4", lightness=[0.75, 0.98], chroma=[0.0, 0.35], temperature=[-1.6, 0.0], hues="denim sky jade", families="ocean nordic monochrome", font_traits="clinical trustworthy readable clean", layouts="left_text_column:1 top_logo_band:.8", source="wcag", rationale="Medicine cartons: white ground, one colour-coded band, large legible dosage text for all ages (WCAG contrast)."),
    "product:baijiu": T("guochao:.7 luxury:.6 festive:.5 eastern_zen:.3", hues="red gold", families="chinese_red_gold black_gold jewel_tones", font_traits="calligraphic traditional chinese luxurious", font_categories="calligraphy", layouts="vertical_calligraphy:1 framed_classic:.8", source="cn_culture", rationale="Baijiu gift boxes: imperial red and gold or black lacquer, calligraphic brand names set vertically."),
    "product:feminine_care": T("minimalist:.6 kawaii:.4 botanical:.4 clinical:.3", lightness=[0.75, 0.98], chroma=[0.05, 0.35], hues="peony lavender sky", families="pastel morandi nordic", font_traits="gentle soft clean feminine", layouts="minimal_stack:.8 centered_hero:.6", source="category", rationale="Pads/tampons: soft pinks and lavenders for comfort and clean layouts for hygiene; newer brands go minimal."),
    "product:hot_pot": T("guochao:.6 bold_graphic:.6 festive:.5", temperature=[0.5, 1.6], chroma=[0.45, 1.0], hues="red cinnabar orange", families="chinese_red_gold vivid", font_traits="bold calligraphic chinese", font_categories="calligraphy display", layouts="oversized_type:.8 vertical_calligraphy:.6 bottom_text_band:.6", source="cn_culture", rationale="火锅底料: chilli red and butter orange (Sichuan heat), bold calligraphic names, steaming-pot photography."),
    # ----- audiences by life stage
    "audience:babies": T("kawaii:.8 minimalist:.4 clinical:.3", lightness=[0.8, 0.98], chroma=[0.05, 0.3], hues="sky peach lemon mint", families="pastel cream nordic", font_traits="soft rounded gentle childlike", font_categories="rounded", layouts="centered_hero:.9", source="kobayashi", rationale="Light, clear tints read gentle and safe ('pretty/soft'); rounded letterforms."),
    "audience:teens": T("playful:.7 bold_graphic:.6 kawaii:.3 futuristic:.3", chroma=[0.35, 1.1], families="vivid neon pastel", font_traits="youthful quirky bold", layouts="diagonal_split:.8 oversized_type:.7", source="category", rationale="Teens: loud, meme-able colour and type; trend-led rather than heritage."),
    "audience:newlyweds": T("luxury:.5 botanical:.5 festive:.4", hues="rose gold peony", families="pastel chinese_red_gold cream", font_traits="romantic elegant delicate", font_categories="script serif", layouts="framed_classic:.9 centered_hero:.6", source="cn_culture", rationale="Newlyweds: double-happiness red and gold in China, blush and ivory in the western register."),
    "audience:expecting_mothers": T("minimalist:.5 clinical:.5 botanical:.4 kawaii:.3", lightness=[0.78, 0.98], chroma=[0.0, 0.25], hues="peach sage sky", families="cream pastel nordic", font_traits="gentle soft trustworthy", layouts="minimal_stack:.8 top_logo_band:.6", source="category", rationale="Pregnancy products: calm soft neutrals and safe-ingredient cues, nothing loud."),
    "audience:new_parents": T("kawaii:.5 clinical:.5 minimalist:.4", lightness=[0.78, 0.98], hues="sky mint peach", families="pastel nordic cream", font_traits="trustworthy gentle rounded", layouts="top_logo_band:.8 centered_hero:.7", source="category", rationale="New parents buy reassurance: soft pastels, rounded type and clear information."),
    "audience:families": T("playful:.5 natural_organic:.5 festive:.3 minimalist:.3", temperature=[0.0, 1.4], hues="apricot lemon matcha", families="vivid earth_tones cream", font_traits="friendly warm readable", layouts="centered_hero:.8 top_logo_band:.7", source="category", rationale="Family packs: warm, friendly colour, clear value and quantity callouts."),
    "audience:couples": T("botanical:.4 kawaii:.4 luxury:.4 minimalist:.3", hues="rose peony lavender", families="pastel morandi jewel_tones", font_traits="romantic elegant", font_categories="script", layouts="centered_hero:.7 framed_classic:.6", source="kobayashi", rationale="Couples: paired/twin designs in romantic roses and lavenders ('romantic' region)."),
    "audience:singles": T("minimalist:.7 playful:.4 scandinavian:.4", families="morandi nordic vivid", font_traits="modern minimal casual", layouts="minimal_stack:.8 oversized_type:.6", source="category", rationale="Single-serve and self-care: compact packs, modern minimal design, witty copy."),
    "audience:tourists": T("guochao:.6 hand_drawn:.6 festive:.3 retro_vintage:.3", hues="red jade indigo", families="chinese_red_gold vintage jewel_tones", font_traits="traditional calligraphic handmade", layouts="full_bleed_overlay:.8 framed_classic:.6", source="cn_culture", rationale="Souvenirs (文旅): local landmarks as illustration, heritage colour, seals and calligraphy."),
    "audience:middle_aged": T("luxury:.5 minimalist:.5 natural_organic:.4 clinical:.3", lightness=[0.2, 0.8], chroma=[0.0, 0.3], families="morandi earth_tones black_gold", font_traits="classic readable trustworthy elegant", layouts="top_logo_band:.7 centered_hero:.6", source="wcag", rationale="40s-50s: quality over trend, muted rich tones, larger readable type (WCAG)."),
    # ----- moods
    "mood:dreamy": T("kawaii:.5 botanical:.4 futuristic:.3 playful:.3", lightness=[0.75, 0.98], chroma=[0.1, 0.4], temperature=[-1.2, 0.0], hues="lavender iris sky peony", families="pastel morandi", font_traits="delicate romantic soft", font_categories="script", layouts="full_bleed_overlay:.8 centered_hero:.6", source="kobayashi", rationale="'Dreamy/romantic': pale lavender-blue tints, gradients and soft edges."),
    "mood:cozy": T("natural_organic:.6 hand_drawn:.5 scandinavian:.4 retro_vintage:.3", lightness=[0.5, 0.92], chroma=[0.08, 0.35], temperature=[0.1, 1.4], hues="amber honey terracotta peach", families="cream earth_tones vintage", font_traits="warm friendly handmade", font_categories="handwritten serif", layouts="centered_hero:.7 window_cutout:.5", source="ou2004", rationale="Cosy/hygge: warm, light, low-activity colours (Ou: warm, passive), knit and wood textures."),
    "mood:edgy": T("bold_graphic:.9 futuristic:.4 guochao:.2", lightness=[0.05, 0.45], chroma=[0.2, 1.2], hues="magenta red lemon", families="monochrome neon vivid", font_traits="streetwear bold condensed urban", font_categories="display", layouts="oversized_type:1 asymmetric_right:.7", source="ou2004", rationale="Edgy: dark and heavy with high contrast and one loud accent (Ou: heavy + active)."),
    "mood:healing": T("minimalist:.5 botanical:.5 kawaii:.3 eastern_zen:.3", lightness=[0.72, 0.97], chroma=[0.03, 0.25], temperature=[-1.0, 0.2], hues="sage sea_glass peach lavender", families="pastel morandi botanical_greens", font_traits="gentle calm soft", font_categories="rounded handwritten", layouts="minimal_stack:.8 centered_hero:.6", source="kobayashi", rationale="治愈系: light, low-chroma soft tints ('soft/gentle' + 'calm'), rounded type and gentle illustration."),
    # ----- trend and style words
    "keyword:cream_style": T("minimalist:.8 scandinavian:.4 kawaii:.3", lightness=[0.8, 0.97], chroma=[0.03, 0.2], temperature=[0.0, 1.0], hues="honey peach apricot", families="cream pastel", font_traits="soft rounded gentle minimal", font_categories="rounded sans", layouts="minimal_stack:.9 centered_hero:.7", source="kobayashi", rationale="奶油风: creamy off-whites and milk-tea beiges (light, warm, low chroma), soft rounded shapes."),
    "keyword:log_wood": T("natural_organic:.8 scandinavian:.7 minimalist:.6", lightness=[0.6, 0.95], chroma=[0.05, 0.25], temperature=[0.0, 1.2], hues="honey amber apricot", families="cream earth_tones nordic", font_traits="natural minimal calm clean", font_categories="sans", layouts="minimal_stack:.9 window_cutout:.5", source="category", rationale="原木风: light oak/ash wood tones with off-white, MUJI-like restraint and plain sans type."),
    "keyword:french": T("luxury:.5 botanical:.5 retro_vintage:.4 minimalist:.3", chroma=[0.05, 0.4], hues="denim cherry rose", families="cream vintage morandi", font_traits="elegant romantic classic delicate", font_categories="serif script", layouts="framed_classic:.8 minimal_stack:.6", source="category", rationale="法式/French chic: ecru and ivory with navy and red accents, didone serifs and script, relaxed elegance."),
    "keyword:maximalism": T("playful:.7 bold_graphic:.6 hand_drawn:.4 art_deco:.3", chroma=[0.4, 1.2], families="vivid jewel_tones neon", font_traits="bold expressive artistic quirky", font_categories="display", layouts="full_bleed_overlay:1 diagonal_split:.6", source="ou2004", rationale="极繁主义: many saturated hues and layered pattern (high activity), artwork covering every panel."),
    "keyword:barbiecore": T("kawaii:.7 playful:.7 bold_graphic:.3", salience=3.0, lightness=[0.55, 0.92], chroma=[0.3, 1.0], hues="peony orchid pink", families="pastel vivid neon", font_traits="playful bold feminine", font_categories="display script", layouts="centered_hero:.8 oversized_type:.6", source="category", rationale="Barbiecore/芭比粉: hot magenta-pink as the dominant field, glossy finish, playful retro type."),
    "keyword:old_money": T("luxury:.8 retro_vintage:.6 minimalist:.3", lightness=[0.2, 0.8], chroma=[0.05, 0.3], hues="indigo olive amber plum", families="earth_tones jewel_tones cream", font_traits="classic elegant traditional formal", font_categories="serif", layouts="framed_classic:1 badge_seal:.6 centered_hero:.5", source="category", rationale="老钱风/old money: navy, bottle green, camel and burgundy on cream, crests and classic serifs, no loud logos."),
    "keyword:brutalist": T("bold_graphic:1 minimalist:.3", chroma=[0.0, 0.9], families="monochrome vivid", font_traits="bold graphic impactful condensed", font_categories="sans display", layouts="oversized_type:1 horizontal_split:.7 left_text_column:.5", source="category", rationale="(Neo-)brutalism: raw blocks, black outlines, flat fills, grotesque sans, the grid left visible."),
    "keyword:dopamine": T("playful:1 bold_graphic:.5 kawaii:.3", salience=3.0, lightness=[0.55, 0.95], chroma=[0.5, 1.2], hues="orange lemon peony mint sky", families="vivid neon pastel", font_traits="playful bold rounded energetic", font_categories="rounded display", layouts="diagonal_split:.8 full_bleed_overlay:.7", source="ou2004", rationale="多巴胺配色: several light, saturated hues side by side (Ou: high activity, warm) - joy."),
    "keyword:maillard": T("retro_vintage:.7 natural_organic:.7 luxury:.3", lightness=[0.25, 0.75], chroma=[0.15, 0.45], temperature=[0.3, 1.4], hues="amber terracotta honey apricot", families="earth_tones vintage cream", font_traits="warm classic retro", font_categories="serif slab", layouts="badge_seal:.7 minimal_stack:.6", source="kobayashi", rationale="美拉德: caramel, toffee and chestnut browns layered tone on tone (warm, dull, mid-dark)."),
    "keyword:quiet_luxury": T("minimalist:.9 luxury:.7", lightness=[0.3, 0.9], chroma=[0.0, 0.15], families="morandi cream monochrome", font_traits="elegant minimal luxurious", font_categories="serif sans", layouts="minimal_stack:1 centered_hero:.6", source="kobayashi", rationale="Quiet luxury/静奢: 'dignified/elegant' without gold - greige, camel, charcoal, a tiny logo, generous space."),
    "keyword:wabi_sabi": T("eastern_zen:.9 natural_organic:.7 minimalist:.4", lightness=[0.45, 0.9], chroma=[0.0, 0.18], hues="olive sage terracotta", families="morandi earth_tones cream", font_traits="zen calm natural handmade", font_categories="calligraphy serif", layouts="asymmetric_right:.9 vertical_calligraphy:.7 minimal_stack:.6", source="cn_culture", rationale="侘寂: weathered greys, clay and ash tones, imperfect texture, asymmetric emptiness."),
    "keyword:bauhaus": T("bold_graphic:.9 minimalist:.4 art_deco:.3", chroma=[0.4, 1.0], hues="cinnabar lemon denim", families="vivid monochrome", font_traits="geometric bold modern", font_categories="sans display", layouts="horizontal_split:.8 diagonal_split:.7 oversized_type:.6", source="category", rationale="Bauhaus: primary red, yellow and blue with black on white, circle/square/triangle, geometric sans."),
    "keyword:memphis": T("playful:1 bold_graphic:.6", chroma=[0.35, 1.1], hues="peony lemon teal lavender", families="vivid pastel neon", font_traits="playful quirky geometric bold", font_categories="display", layouts="full_bleed_overlay:.9 diagonal_split:.7", source="category", rationale="Memphis (1981): clashing brights and pastels, squiggles, confetti and terrazzo patterns."),
    "keyword:vaporwave": T("futuristic:.7 playful:.5 retro_vintage:.4", chroma=[0.3, 1.0], hues="orchid iris sky teal", families="neon pastel", font_traits="retro futuristic quirky", font_categories="display", layouts="full_bleed_overlay:.9 asymmetric_right:.6", source="category", rationale="蒸汽波: pink-cyan-purple gradients, grid horizons, 90s computer type."),
    "keyword:cottagecore": T("botanical:.8 hand_drawn:.6 natural_organic:.6 retro_vintage:.3", lightness=[0.6, 0.94], chroma=[0.08, 0.35], hues="sage rose honey", families="botanical_greens cream pastel", font_traits="handmade romantic natural delicate", font_categories="script handwritten serif", layouts="full_bleed_overlay:.7 framed_classic:.7", source="category", rationale="Cottagecore/田园风: gingham, wildflowers, sage and cream, hand lettering."),
    "keyword:japandi": T("minimalist:.8 scandinavian:.7 eastern_zen:.6 natural_organic:.4", lightness=[0.55, 0.95], chroma=[0.0, 0.15], hues="sage olive amber", families="nordic cream morandi", font_traits="minimal calm zen clean", font_categories="sans serif", layouts="minimal_stack:1 asymmetric_right:.6", source="kobayashi", rationale="Japandi: Scandinavian pale neutrals with Japanese warm wood and ink, low chroma, lots of space."),
    "keyword:boho": T("hand_drawn:.7 natural_organic:.6 retro_vintage:.5", temperature=[0.2, 1.4], chroma=[0.2, 0.5], hues="terracotta mustard teal", families="earth_tones vintage jewel_tones", font_traits="handmade artistic warm", font_categories="handwritten script", layouts="full_bleed_overlay:.8 badge_seal:.5", source="category", rationale="Bohemian: terracotta, mustard and rust with teal, macrame and folk pattern, hand lettering."),
    "keyword:industrial": T("bold_graphic:.6 minimalist:.5 retro_vintage:.4 futuristic:.2", lightness=[0.15, 0.7], chroma=[0.0, 0.2], temperature=[-1.2, 0.3], families="monochrome earth_tones", font_traits="sturdy condensed technical bold", font_categories="slab sans mono", layouts="top_logo_band:.7 badge_seal:.6 left_text_column:.5", source="category", rationale="工业风: raw steel and concrete greys, rust accents, stencil and slab type."),
    "keyword:korean_style": T("minimalist:.8 kawaii:.4 scandinavian:.3", lightness=[0.75, 0.97], chroma=[0.02, 0.25], hues="peach lavender sky", families="pastel cream morandi", font_traits="clean modern soft minimal", font_categories="sans rounded", layouts="minimal_stack:.9 centered_hero:.6", source="category", rationale="韩系: clean light neutrals with soft pastel accents, thin sans and airy layouts (K-beauty)."),
    "keyword:japanese_style": T("minimalist:.6 eastern_zen:.5 kawaii:.4 natural_organic:.4", lightness=[0.65, 0.96], chroma=[0.02, 0.3], hues="indigo sage cherry", families="cream morandi pastel", font_traits="clean calm delicate", font_categories="sans serif", layouts="minimal_stack:.8 vertical_calligraphy:.6 asymmetric_right:.5", source="category", rationale="日系: airy whites, indigo and sakura accents, natural textures, small type and vertical setting."),
    "keyword:pop_art": T("bold_graphic:.9 playful:.8", chroma=[0.5, 1.2], hues="red lemon sky peony", families="vivid neon", font_traits="bold playful graphic quirky", font_categories="display", layouts="full_bleed_overlay:.8 oversized_type:.8", source="category", rationale="Pop art (Lichtenstein, Warhol): primary flats, Ben-Day halftone dots, black outlines, speech bubbles."),
    "keyword:dark_academia": T("retro_vintage:.7 luxury:.5 art_deco:.2", lightness=[0.1, 0.45], chroma=[0.05, 0.35], temperature=[-0.3, 1.2], hues="plum olive amber", families="vintage jewel_tones earth_tones black_gold", font_traits="literary classic traditional editorial", font_categories="serif", layouts="framed_classic:1 left_text_column:.6", source="category", rationale="Dark academia: tweed browns, bottle green and burgundy, parchment, classic book serifs."),
    # ----- festivals and shopping events
    "occasion:lantern_festival": T("festive:1 guochao:.6", salience=3.0, temperature=[0.3, 1.6], hues="red gold", families="chinese_red_gold jewel_tones", font_traits="festive calligraphic chinese", layouts="framed_classic:.8 vertical_calligraphy:.7", source="cn_culture", rationale="元宵: red lanterns, warm lamplight gold, white tangyuan; closes the New Year season."),
    "occasion:qixi": T("kawaii:.4 botanical:.4 guochao:.4 luxury:.3", hues="peony rose indigo", families="pastel jewel_tones chinese_red_gold", font_traits="romantic chinese delicate calligraphic", font_categories="script calligraphy", layouts="centered_hero:.7 vertical_calligraphy:.6", source="cn_culture", rationale="七夕: Niulang and Zhinu - star-night indigo with rose pinks, magpie bridge, calligraphic verse."),
    "occasion:easter": T("kawaii:.8 playful:.5 botanical:.4", lightness=[0.78, 0.97], hues="lemon mint lavender peony", families="pastel", font_traits="cute friendly soft", layouts="centered_hero:.8 full_bleed_overlay:.6", source="category", rationale="Easter: pastel eggs, spring blossom and bunnies."),
    "occasion:thanksgiving": T("natural_organic:.6 retro_vintage:.6 festive:.4 hand_drawn:.3", temperature=[0.3, 1.6], hues="terracotta amber mustard olive", families="earth_tones vintage", font_traits="warm classic handmade", layouts="framed_classic:.7 badge_seal:.7", source="category", rationale="Thanksgiving harvest: pumpkin, cranberry, wheat and olive."),
    "occasion:mothers_day": T("botanical:.7 kawaii:.3 luxury:.3", lightness=[0.65, 0.97], hues="peony rose peach", families="pastel morandi", font_traits="romantic feminine delicate gentle", font_categories="script serif", layouts="full_bleed_overlay:.7 centered_hero:.7", source="category", rationale="母亲节: carnations, blush pinks and script type."),
    "occasion:fathers_day": T("minimalist:.5 luxury:.4 retro_vintage:.4 bold_graphic:.3", lightness=[0.15, 0.7], temperature=[-1.4, 0.6], hues="denim indigo amber", families="ocean monochrome earth_tones", font_traits="classic bold sturdy", font_categories="serif slab", layouts="top_logo_band:.7 badge_seal:.6", source="category", rationale="父亲节: navy, tan leather and tie stripes, sturdy classic type."),
    "occasion:childrens_day": T("playful:1 kawaii:.6 hand_drawn:.4", lightness=[0.55, 0.95], chroma=[0.4, 1.1], hues="lemon sky peony mint", families="vivid pastel", font_traits="playful childlike rounded", font_categories="rounded handwritten", layouts="full_bleed_overlay:.8 diagonal_split:.7", source="ou2004", rationale="六一: bright, light, saturated colours (children's preference, high activity) and doodles."),
    "occasion:new_year": T("festive:.6 bold_graphic:.4 luxury:.4 futuristic:.2", hues="gold indigo", families="black_gold jewel_tones vivid", font_traits="festive bold modern", layouts="oversized_type:.8 centered_hero:.6", source="category", rationale="元旦/跨年: countdown numerals and fireworks, midnight blue or black with gold sparkle."),
    "occasion:womens_day": T("botanical:.5 kawaii:.4 luxury:.4 minimalist:.3", hues="peony rose lavender orchid", families="pastel morandi jewel_tones", font_traits="elegant feminine modern", layouts="centered_hero:.7 minimal_stack:.6", source="category", rationale="女神节/3.8: purple (the International Women's Day colour) and rose, beauty gift sets, refined type."),
    "occasion:graduation": T("playful:.5 bold_graphic:.5 minimalist:.3 retro_vintage:.3", hues="denim gold indigo", families="vivid ocean black_gold", font_traits="youthful bold editorial", layouts="oversized_type:.8 badge_seal:.6", source="category", rationale="毕业季: cap-and-gown navy or black with gold, class-year numerals and badges."),
    "occasion:birthday": T("playful:.9 festive:.5 kawaii:.5", lightness=[0.6, 0.95], chroma=[0.3, 1.0], hues="peony lemon sky mint", families="vivid pastel", font_traits="playful bold friendly", font_categories="display rounded", layouts="centered_hero:.8 full_bleed_overlay:.7", source="category", rationale="Birthdays: confetti, balloons and candles in cheerful brights or pastels."),
    "occasion:national_day": T("festive:.8 guochao:.8", salience=3.0, temperature=[0.4, 1.6], hues="red gold", families="chinese_red_gold", font_traits="festive bold chinese traditional", layouts="oversized_type:.7 framed_classic:.7", source="cn_culture", rationale="国庆: national red and gold, star motifs and patriotic guochao graphics."),
})

def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(round(v, 4))
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_fmt(v[k])}" for k in sorted(v)) + " }"
    raise TypeError(v)


TEACHER_PARAMS = {
    "group_weight": {"product": 1.0, "audience": 0.8, "mood": 1.0, "season": 0.8, "occasion": 0.9, "palette": 1.6, "keyword": 0.8},
    "style_mediation": 0.6,
    "family_bonus": 0.6,
    "palette_mix": {"terms": 0.6, "image": 0.25, "brand": 0.15},
    "named_family_weight": 0.5,
    # tiny fixed per-catalogue-entry offsets (golden-ratio sequence over the catalogue index) added to the raw
    # palette / pairing fits: sibling palettes and pairings with identical traits otherwise tie exactly or
    # nearly, which leaves their order undefined for the student and makes INT8 rounding swap them
    "tie_break": 0.04,
    "tie_break_fonts": 0.03,
    "grading": {
        "styles": {"k": 4, "top": 0.95, "kth": 0.25, "empty": 0.3, "min": 0.01, "floor": 0.08, "clear_gap": 0.25},
        "palettes": {"k": 10, "top": 0.95, "kth": 0.3, "empty": 0.3, "min": 0.01, "floor": 0.05, "clear_gap": 0.25},
        "fonts": {"k": 10, "top": 0.95, "kth": 0.3, "empty": 0.3, "min": 0.01, "floor": 0.08, "clear_gap": 0.3},
    },
    "heatmap_softness": 0.05,
}

KEY_ORDER = ["styles", "salience", "lightness", "chroma", "temperature", "hues", "families", "font_traits", "font_categories", "layouts", "source", "rationale"]


def write_toml(vocab):
    ids = [t["id"] for t in vocab["terms"]]
    missing = [i for i in ids if i not in TERM_K]
    assert not missing, f"terms without knowledge: {missing}"
    lines = [
        "# packd-default design knowledge (the teacher).",
        "# Generated by engines/recipe/packd_recipe/knowledge.py; edit there and rebuild.",
        "# Units: lightness/chroma = CIELAB L*/100 and C*/100; temperature = Ou et al. (2004) warm-cool",
        "# index (about -1.8 cool .. +1.6 warm; neutral grey -0.5); hues = [[CIELAB hue angle, tolerance], ...];",
        "# families = palette families of catalogues/palettes.json; styles/layouts = weights 0..1;",
        "# source = key of [sources]; rationale = why.",
        "",
        'version = "1.0.0"',
        "",
        "[sources]",
    ]
    for k in sorted(SOURCES):
        lines.append(f"{k} = {_fmt(SOURCES[k])}")
    lines += ["", "[teacher]"]
    for k in sorted(TEACHER_PARAMS):
        lines.append(f"{k} = {_fmt(TEACHER_PARAMS[k])}")
    for sid in sorted(STYLE_K):
        lines += ["", f'[styles."{sid}"]']
        for k in KEY_ORDER:
            if k in STYLE_K[sid]:
                lines.append(f"{k} = {_fmt(STYLE_K[sid][k])}")
    for tid in ids:
        lines += ["", f'[terms."{tid}"]']
        for k in KEY_ORDER:
            if k in TERM_K[tid]:
                lines.append(f"{k} = {_fmt(TERM_K[tid][k])}")
    return "\n".join(lines) + "\n"
