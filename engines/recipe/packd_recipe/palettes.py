"""Systematic palette catalogue: curated hue names x family recipes (CIELCh), gamut-mapped,
WCAG-checked (text on background >= 4.5, fixed by moving text lightness, else dropped)."""
import numpy as np
from . import colour as col

# named hues: (en, zh, CIELAB hue angle in degrees)
HUES = [
    ("peony", "牡丹", 0), ("rose", "玫瑰", 10), ("cherry", "樱桃", 22), ("cinnabar", "朱砂", 35),
    ("coral", "珊瑚", 42), ("terracotta", "赤陶", 50), ("peach", "蜜桃", 60), ("apricot", "杏子", 68),
    ("amber", "琥珀", 76), ("honey", "蜂蜜", 84), ("mustard", "芥末", 92), ("lemon", "柠檬", 100),
    ("olive", "橄榄", 110), ("matcha", "抹茶", 120), ("sage", "鼠尾草", 135), ("jade", "翡翠", 155),
    ("mint", "薄荷", 170), ("teal", "青碧", 190), ("sea glass", "海玻璃", 205), ("lagoon", "泻湖", 222),
    ("sky", "晴空", 240), ("denim", "丹宁", 258), ("indigo", "靛蓝", 285), ("iris", "鸢尾", 298),
    ("lavender", "薰衣草", 310), ("plum", "梅子", 328), ("orchid", "兰花", 342),
]

# family: (modifiers [(en, zh)], hue subset (None = all), number of colours, recipe)
# recipe rows: (L, C, hue offset or absolute 'a:<deg>') for bg, primary, secondary..., accent, text
FAMILIES = {
    "morandi": ([("haze", "雾"), ("dust", "尘"), ("veil", "纱"), ("linen", "亚麻")], None, 6,
                [(90, 5, 0), (62, 14, 0), (74, 10, 35), (82, 8, -30), (55, 16, 170), (28, 7, 0)]),
    "pastel": ([("sorbet", "冰沙"), ("cloud", "云朵"), ("bloom", "花开"), ("breeze", "微风")], None, 5,
               [(96, 5, 0), (84, 26, 0), (87, 22, 60), (80, 30, 150), (30, 22, 200)]),
    "earth_tones": ([("clay", "陶土"), ("dusk", "暮色"), ("harvest", "丰收"), ("canyon", "峡谷"), ("adobe", "土坯"), ("field", "田野")],
                    ["cinnabar", "coral", "terracotta", "peach", "apricot", "amber", "honey", "mustard", "olive", "matcha", "sage"], 5,
                    [(90, 10, "a:75"), (50, 38, 0), (66, 26, 22), (38, 24, -18), (22, 10, "a:55")]),
    "neon": ([("pulse", "脉冲"), ("glow", "荧光"), ("voltage", "电压")], None, 4,
             [(12, 12, 180), (72, 95, 0), (88, 85, 120), (96, 4, 0)]),
    "jewel_tones": ([("velvet", "丝绒"), ("crown", "王冠"), ("silk", "丝绸")],
                    ["peony", "rose", "cherry", "cinnabar", "jade", "mint", "teal", "sea glass", "lagoon", "denim", "indigo", "iris", "lavender", "plum", "orchid", "olive", "mustard"], 5,
                    [(22, 32, 0), (40, 55, 0), (35, 45, 150), (76, 52, "a:85"), (95, 8, "a:85")]),
    "monochrome": ([("ink", "墨"), ("graphite", "石墨"), ("chalk", "粉笔")], None, 4,
                   [(97, 2, 0), (22, 4, 0), (55, 22, 0), (12, 2, 0)]),
    "vintage": ([("postcard", "明信片"), ("poster", "海报"), ("film", "胶片")], None, 6,
                [(89, 14, "a:82"), (55, 34, 0), (64, 28, 140), (72, 40, "a:88"), (48, 20, 200), (25, 14, "a:30")]),
    "nordic": ([("fjord", "峡湾"), ("frost", "霜"), ("birch", "白桦")], None, 6,
               [(95, 3, "a:80"), (70, 10, 0), (83, 7, 0), (60, 5, "a:70"), (52, 22, 0), (26, 8, "a:250")]),
    "chinese_red_gold": ([("lantern", "灯笼"), ("palace", "宫墙"), ("lacquer", "漆器")],
                         ["jade", "teal", "sea glass", "indigo", "mint", "lagoon", "denim", "matcha", "sage", "plum", "iris", "honey", "lemon", "olive"], 5,
                         [(42, 66, "a:32"), (78, 52, "a:85"), (52, 30, 0), (26, 38, "a:30"), (97, 10, "a:85")]),
    "black_gold": ([("noir", "夜"), ("gilded", "鎏金"), ("midnight", "午夜")], None, 5,
                   [(10, 3, 0), (75, 46, "a:82"), (34, 28, 0), (58, 30, "a:72"), (92, 10, "a:85")]),
    "vivid": ([("pop", "波普"), ("splash", "飞溅"), ("fiesta", "派对"), ("parade", "巡游")], None, 5,
              [(96, 5, 0), (60, 72, 0), (70, 68, 120), (82, 78, 60), (20, 22, 240)]),
    "ocean": ([("tide", "潮汐"), ("harbour", "港湾"), ("surf", "浪花"), ("reef", "礁石"), ("shore", "海岸"), ("depth", "深海")],
              ["mint", "teal", "sea glass", "lagoon", "sky", "denim", "indigo", "jade"], 5,
              [(94, 6, 0), (45, 36, 0), (70, 26, -20), (78, 34, "a:70"), (22, 24, 0)]),
    "botanical_greens": ([("fern", "蕨"), ("grove", "林"), ("leaf", "叶"), ("herb", "香草"), ("moss", "苔"), ("canopy", "树冠")],
                         ["olive", "matcha", "sage", "jade", "mint", "lemon", "teal", "mustard"], 5,
                         [(93, 8, "a:90"), (45, 32, 0), (64, 26, 18), (76, 24, "a:20"), (22, 14, 0)]),
    "cream": ([("latte", "拿铁"), ("oat", "燕麦"), ("cashmere", "羊绒"), ("porcelain", "瓷")], None, 5,
              [(94, 8, "a:80"), (80, 15, "a:70"), (65, 18, 0), (48, 26, 0), (24, 10, "a:60")]),
}

FAMILY_ZH = {"morandi": "莫兰迪", "pastel": "马卡龙", "earth_tones": "大地色", "neon": "霓虹", "jewel_tones": "宝石色",
             "monochrome": "黑白", "vintage": "复古", "nordic": "北欧", "chinese_red_gold": "中国红金", "black_gold": "黑金",
             "vivid": "鲜艳", "ocean": "海洋", "botanical_greens": "植物绿", "cream": "奶油"}


def _hue(base, spec):
    if isinstance(spec, str) and spec.startswith("a:"):
        return float(spec[2:])
    return (base + spec) % 360.0


def attributes(hexes, bg, text):
    labs = np.array([col.hex_to_lab(h) for h in hexes])
    C, h = col.lab_to_lch(labs)
    chrom = C > 8
    if chrom.sum() >= 2:
        w = C[chrom]
        v = (w * np.exp(1j * np.deg2rad(h[chrom]))).sum() / w.sum()
        spread = 1.0 - abs(v)
    else:
        spread = 0.0
    return {
        "lightness": round(float(labs[:, 0].mean() / 100.0), 4),
        "chroma": round(float(min(C.mean() / 100.0, 1.5)), 4),
        "hue_spread": round(float(spread), 4),
        "temperature": round(float(col.ou_warm_cool(labs).mean()), 4),
        "contrast": round(float(col.wcag_contrast(text, bg)), 4),
    }


def make_palette(base_h, recipe, variant, rng):
    out = []
    for k, (L, C, hs) in enumerate(recipe):
        h = _hue(base_h, hs)
        if variant > 0 and k not in (0, len(recipe) - 1):
            L = float(np.clip(L + rng.uniform(-7, 7), 5, 97))
            C = float(max(C * rng.uniform(0.8, 1.2), 0))
            h = (h + rng.uniform(-12, 12)) % 360
        out.append([L, C, h])
    return out


def fix_contrast(lch):
    """Move text lightness away from the background until WCAG >= 4.5; None if impossible."""
    bgL = lch[0][0]
    L, C, h = lch[-1]
    step = -2.0 if L < bgL else 2.0
    bg = col.rgb_to_hex(col.lch_to_rgb(*lch[0]))
    for _ in range(60):
        t = col.rgb_to_hex(col.lch_to_rgb(L, C, h))
        if col.wcag_contrast(t, bg) >= 4.5:
            lch[-1] = [L, C, h]
            return lch
        L += step
        C *= 0.95
        if L < 0 or L > 100:
            return None
    return None


def build_palettes(seed=7):
    rng = np.random.default_rng(seed)
    pals = []
    names = set()
    stats = {"generated": 0, "fixed": 0, "dropped": 0}
    for fam, (mods, hue_subset, n, recipe) in FAMILIES.items():
        hues = [x for x in HUES if hue_subset is None or x[0] in hue_subset]
        per_fam_target = 30
        combos = []
        for vi, (m_en, m_zh) in enumerate(mods):
            for (h_en, h_zh, h_deg) in hues:
                combos.append((vi, m_en, m_zh, h_en, h_zh, h_deg))
        # spread the selection across hues and variants deterministically
        order = rng.permutation(len(combos))
        chosen = sorted(order[:per_fam_target])
        for idx in chosen:
            vi, m_en, m_zh, h_en, h_zh, h_deg = combos[idx]
            lch = make_palette(h_deg, recipe, vi, rng)
            if fam == "monochrome" and vi == 1:     # dark variant
                lch[0][0], lch[-1][0] = 14.0, 95.0
                lch[1][0] = 80.0
            stats["generated"] += 1
            hexes0 = [col.rgb_to_hex(col.lch_to_rgb(*c)) for c in lch]
            if col.wcag_contrast(hexes0[-1], hexes0[0]) < 4.5:
                lch = fix_contrast(lch)
                if lch is None:
                    stats["dropped"] += 1
                    continue
                stats["fixed"] += 1
            hexes = [col.rgb_to_hex(col.lch_to_rgb(*c)) for c in lch]
            if len(set(hexes)) < len(hexes):
                stats["dropped"] += 1
                continue
            name = f"{h_en} {m_en}"
            assert name not in names
            names.add(name)
            roles = {"background": hexes[0], "primary": hexes[1], "accent": hexes[-2], "text": hexes[-1]}
            pals.append({
                "id": f"{fam.replace('_', '-')}-{h_en.replace(' ', '-')}-{m_en}",
                "name": name,
                "name_zh": f"{h_zh}{m_zh}",
                "family": fam,
                "colors": hexes,
                "roles": roles,
                "attributes": attributes(hexes, roles["background"], roles["text"]),
            })
    return pals, stats
