"""Brief vocabulary (English + Simplified Chinese synonyms) and the contract's
normalise/match/encode rules (docs/bundle-format.md, "Encoding a brief")."""
import re
import unicodedata

GROUPS = ["product", "audience", "mood", "season", "occasion", "palette", "keyword"]

# (id, [en synonyms], [zh synonyms]); the first en synonym is the canonical term.
TERMS = {
    "product": [
        ("beverage", ["beverage", "drink", "drinks", "soft drink", "juice", "sparkling water"], ["饮料", "饮品", "软饮", "果汁", "气泡水"]),
        ("tea", ["tea", "milk tea", "tea drink", "tea leaves"], ["茶", "茶叶", "茶饮", "奶茶"]),
        ("coffee", ["coffee", "coffee beans", "cold brew", "latte"], ["咖啡", "咖啡豆", "冷萃", "拿铁"]),
        ("snacks", ["snacks", "snack", "chips", "crisps", "nuts"], ["零食", "休闲食品", "薯片", "坚果"]),
        ("confectionery", ["confectionery", "candy", "sweets", "chocolate"], ["糖果", "巧克力", "甜食"]),
        ("dairy", ["dairy", "milk", "yogurt", "yoghurt", "cheese"], ["乳制品", "牛奶", "酸奶", "奶酪"]),
        ("cosmetics", ["cosmetics", "makeup", "make up", "lipstick"], ["彩妆", "化妆品", "口红"]),
        ("skincare", ["skincare", "skin care", "serum", "face cream"], ["护肤", "护肤品", "精华", "面霜"]),
        ("fragrance", ["fragrance", "perfume", "scent"], ["香水", "香氛"]),
        ("baby_care", ["baby care", "baby products", "infant care", "diapers"], ["母婴", "婴儿用品", "婴童", "纸尿裤"]),
        ("pet_food", ["pet food", "dog food", "cat food", "pet treats"], ["宠物食品", "狗粮", "猫粮", "宠物零食"]),
        ("household", ["household", "cleaning", "home care", "detergent"], ["家居清洁", "日用品", "洗涤剂", "家清"]),
        ("electronics", ["electronics", "gadget", "consumer electronics", "headphones"], ["电子产品", "数码", "耳机", "数码产品"]),
        ("toys", ["toys", "toy", "board games"], ["玩具", "益智玩具", "桌游"]),
        ("wine_spirits", ["wine & spirits", "wine and spirits", "wine", "spirits", "liquor", "whisky", "baijiu"], ["酒", "葡萄酒", "白酒", "烈酒", "酒类"]),
        ("health_supplements", ["health supplements", "supplements", "vitamins", "nutrition"], ["保健品", "营养补充剂", "维生素", "营养品"]),
        ("frozen_food", ["frozen food", "frozen", "dumplings"], ["冷冻食品", "速冻食品", "速冻", "水饺"]),
        ("bakery", ["bakery", "bread", "pastry", "cookies", "biscuits"], ["烘焙", "面包", "糕点", "饼干"]),
        ("stationery", ["stationery", "notebook", "pens"], ["文具", "文创", "笔记本"]),
        ("apparel", ["apparel", "clothing", "fashion", "socks"], ["服装", "服饰", "时装", "袜子"]),
        ("ice_cream", ["ice cream", "gelato", "popsicle"], ["冰淇淋", "雪糕", "冰激凌"]),
        ("craft_beer", ["craft beer", "beer", "lager"], ["精酿啤酒", "啤酒", "精酿"]),
        ("mooncake", ["mooncake", "mooncakes"], ["月饼"]),
        ("condiments", ["condiments", "sauce", "seasoning", "spices"], ["调味品", "酱料", "调料", "酱油"]),
        ("instant_noodles", ["instant noodles", "noodles", "ramen"], ["方便面", "泡面", "面条"]),
        ("personal_care", ["personal care", "shampoo", "body wash", "haircare"], ["个护", "洗发水", "沐浴露", "洗护"]),
        ("jewellery", ["jewellery", "jewelry", "accessories"], ["珠宝", "首饰", "饰品"]),
        ("fresh_produce", ["fresh produce", "fruit", "vegetables"], ["生鲜", "水果", "蔬菜"]),
        ("home_fragrance", ["home fragrance", "candle", "candles", "diffuser"], ["家居香氛", "香薰", "蜡烛", "香薰蜡烛"]),
    ],
    "audience": [
        ("young_women", ["young women", "young woman", "women", "female"], ["年轻女性", "女性", "女生", "年轻女生"]),
        ("gen_z", ["gen z", "generation z", "zoomers"], ["Z世代", "00后", "95后", "z时代"]),
        ("kids", ["kids", "children", "child"], ["儿童", "孩子", "小朋友"]),
        ("parents", ["parents", "moms", "mothers", "families"], ["父母", "宝妈", "家庭", "妈妈"]),
        ("seniors", ["seniors", "elderly", "older adults"], ["老年人", "银发族", "长辈"]),
        ("men", ["men", "male", "guys"], ["男性", "男士", "男生"]),
        ("professionals", ["professionals", "office workers", "white collar"], ["职场人士", "白领", "上班族"]),
        ("luxury_buyers", ["luxury buyers", "high end consumers", "affluent"], ["高端消费者", "高净值人群", "奢侈品消费者"]),
        ("students", ["students", "college students"], ["学生", "大学生"]),
        ("eco_conscious", ["eco conscious", "green consumers", "sustainability minded"], ["环保人士", "环保主义者", "绿色消费者"]),
        ("fitness", ["fitness enthusiasts", "athletes", "gym goers"], ["健身人群", "运动爱好者", "健身爱好者"]),
        ("gamers", ["gamers", "gaming"], ["游戏玩家", "玩家", "电竞"]),
        ("pet_owners", ["pet owners", "pet parents"], ["宠物主人", "铲屎官"]),
        ("foodies", ["foodies", "food lovers"], ["吃货", "美食爱好者"]),
        ("millennials", ["millennials", "gen y"], ["千禧一代", "90后", "80后"]),
    ],
    "mood": [
        ("fresh", ["fresh", "refreshing", "crisp"], ["清新", "清爽", "新鲜", "爽口"]),
        ("calm", ["calm", "serene", "tranquil", "relaxing", "healing"], ["宁静", "平静", "舒缓", "治愈"]),
        ("playful", ["playful", "fun", "whimsical"], ["俏皮", "有趣", "趣味", "好玩"]),
        ("premium", ["premium", "high end", "upscale", "luxurious", "luxury", "sophisticated"], ["高级感", "高端", "奢华", "轻奢", "高级"]),
        ("bold", ["bold", "striking", "impactful", "loud"], ["大胆", "醒目", "张扬", "冲击力"]),
        ("natural", ["natural", "organic", "earthy", "pure"], ["自然", "天然", "有机", "纯净"]),
        ("nostalgic", ["nostalgic", "retro", "old school"], ["怀旧", "复古", "老派", "年代感"]),
        ("futuristic", ["futuristic", "techy", "sci fi", "high tech"], ["未来感", "科技感", "科幻", "未来"]),
        ("cute", ["cute", "adorable", "kawaii", "lovely"], ["可爱", "软萌", "卡哇伊", "萌系"]),
        ("elegant", ["elegant", "graceful", "refined", "classy"], ["优雅", "典雅", "精致", "高雅"]),
        ("energetic", ["energetic", "dynamic", "vibrant", "lively"], ["活力", "动感", "充满活力", "元气"]),
        ("warm", ["warm", "cosy", "cozy", "homely"], ["温暖", "温馨", "暖心"]),
        ("cool", ["cool", "icy", "chill"], ["清凉", "冰爽", "凉爽"]),
        ("minimal", ["minimal", "minimalist", "simple", "clean", "understated"], ["简约", "极简", "简洁", "简单"]),
        ("festive", ["festive", "celebratory", "joyful"], ["喜庆", "节日氛围", "欢乐"]),
        ("romantic", ["romantic", "dreamy"], ["浪漫", "梦幻"]),
        ("sweet", ["sweet", "sugary"], ["甜美", "甜蜜", "甜"]),
        ("mysterious", ["mysterious", "moody", "dark"], ["神秘", "暗黑", "暗黑风"]),
        ("traditional", ["traditional", "heritage", "classic"], ["传统", "经典", "古典", "古风"]),
        ("healthy", ["healthy", "wholesome", "nutritious"], ["健康", "营养", "健康感"]),
        ("gentle", ["gentle", "mild", "soft"], ["温和", "柔和", "温柔"]),
        ("trustworthy", ["trustworthy", "reliable", "safe"], ["安心", "可靠", "信赖", "安全"]),
        ("artistic", ["artistic", "creative", "artsy"], ["艺术感", "文艺", "创意"]),
        ("rustic", ["rustic", "farmhouse", "homespun"], ["乡村", "田园", "质朴"]),
    ],
    "season": [
        ("summer_limited", ["summer limited", "summer", "summer edition", "summer limited edition"], ["夏季限定", "夏日限定", "夏天", "夏季", "夏日"]),
        ("winter", ["winter", "winter edition", "winter limited"], ["冬季", "冬天", "冬日", "冬季限定"]),
        ("spring", ["spring", "spring edition", "spring limited"], ["春季", "春天", "春日", "春季限定"]),
        ("autumn", ["autumn", "fall", "autumn edition"], ["秋季", "秋天", "秋日", "秋季限定"]),
    ],
    "occasion": [
        ("chinese_new_year", ["spring festival", "chinese new year", "lunar new year", "cny"], ["春节", "新年", "过年", "农历新年", "年货"]),
        ("mid_autumn", ["mid autumn", "mid autumn festival", "moon festival"], ["中秋", "中秋节", "中秋佳节"]),
        ("christmas", ["christmas", "xmas", "holiday season"], ["圣诞", "圣诞节"]),
        ("valentines", ["valentine's day", "valentines", "valentine", "qixi"], ["情人节", "七夕", "七夕节"]),
        ("gift", ["gift", "gifting", "gift box", "present"], ["礼盒", "礼品", "送礼", "伴手礼"]),
        ("back_to_school", ["back to school", "new semester"], ["开学季", "开学", "新学期"]),
        ("halloween", ["halloween"], ["万圣节"]),
        ("shopping_festival", ["singles day", "double 11", "618"], ["双十一", "双11", "购物节"]),
        ("dragon_boat", ["dragon boat festival", "duanwu"], ["端午", "端午节"]),
        ("wedding", ["wedding", "wedding favours", "wedding favors"], ["婚礼", "喜糖", "结婚"]),
        ("limited_edition", ["limited edition", "collab", "collaboration", "limited"], ["限定", "限量", "限量版", "联名"]),
    ],
    "palette": [
        ("morandi", ["morandi", "morandi colours", "morandi colors", "muted"], ["莫兰迪", "莫兰迪色", "莫兰迪色系", "高级灰"]),
        ("pastel", ["pastel", "pastels", "macaron", "soft pastel"], ["马卡龙", "马卡龙色", "粉彩", "糖果色"]),
        ("earth_tones", ["earth tones", "earthy tones", "earth"], ["大地色", "大地色系", "土色系"]),
        ("neon", ["neon", "fluorescent", "electric"], ["荧光色", "霓虹", "霓虹色"]),
        ("jewel_tones", ["jewel tones", "jewel", "gem tones"], ["宝石色", "宝石色系"]),
        ("monochrome", ["monochrome", "black and white", "grayscale", "greyscale"], ["黑白", "单色", "黑白灰"]),
        ("vintage", ["vintage", "retro colours", "retro colors", "faded"], ["复古色", "复古色系", "做旧"]),
        ("nordic", ["nordic", "scandinavian", "scandi"], ["北欧", "北欧风", "北欧色系"]),
        ("chinese_red_gold", ["chinese red and gold", "chinese red", "red and gold", "china red"], ["中国红", "红金", "国潮红", "红色金色"]),
        ("black_gold", ["black and gold", "black gold", "noir"], ["黑金", "黑金色"]),
        ("vivid", ["vivid", "bright colours", "bright colors", "saturated", "dopamine"], ["鲜艳", "高饱和", "多巴胺", "多巴胺配色"]),
        ("ocean", ["ocean", "ocean blues", "coastal"], ["海洋色", "海蓝", "海洋蓝"]),
        ("botanical_greens", ["botanical greens", "greens", "forest green"], ["森林绿", "绿色系", "植物绿"]),
        ("cream", ["cream", "beige", "neutrals", "warm neutrals"], ["奶油色", "米色", "奶油风", "中性色"]),
    ],
    "keyword": [
        ("guochao", ["guochao", "china chic", "chinese chic", "national trend"], ["国潮", "国风", "新中式"]),
        ("eco_friendly", ["eco friendly", "sustainable", "recyclable", "eco"], ["环保", "可持续", "可回收"]),
        ("handmade", ["handmade", "artisanal", "craft", "handcrafted"], ["手作", "手工", "匠心"]),
        ("cyberpunk", ["cyberpunk"], ["赛博朋克", "赛博"]),
        ("illustration", ["illustration", "illustrated", "hand drawn"], ["插画", "手绘"]),
        ("typography", ["typographic", "type led", "lettering"], ["字体设计", "文字排版", "大字"]),
        ("photography", ["photographic", "product photo", "photo"], ["实物图", "摄影", "产品照片"]),
        ("gradient", ["gradient", "gradients"], ["渐变", "渐变色"]),
        ("geometric", ["geometric", "geometry"], ["几何", "几何图形"]),
        ("floral", ["floral", "flowers", "flower"], ["花卉", "花朵", "碎花"]),
        ("fruity", ["fruity", "citrus", "fruit flavour", "fruit flavor"], ["果味", "水果味", "柑橘"]),
        ("window", ["window", "transparent window", "see through"], ["开窗", "透明", "透明窗"]),
        ("metallic", ["metallic", "foil", "hot stamping", "gold foil"], ["烫金", "金属感", "金箔"]),
        ("holographic", ["holographic", "iridescent", "laser"], ["镭射", "幻彩"]),
        ("matte", ["matte", "matt", "frosted"], ["哑光", "磨砂"]),
        ("pattern", ["pattern", "all over print", "repeat pattern"], ["图案", "满印", "花纹"]),
        ("mascot", ["mascot", "character", "ip character"], ["吉祥物", "IP形象", "卡通形象"]),
        ("cartoon", ["cartoon", "comic", "manga"], ["卡通", "漫画", "动漫"]),
        ("ink_wash", ["ink wash", "chinese painting", "ink painting"], ["水墨", "国画", "山水"]),
        ("paper_cut", ["paper cut", "papercut"], ["剪纸", "窗花"]),
        ("clinical", ["clinical", "scientific", "lab tested", "dermatologist"], ["科学", "专业", "成分党", "实验室"]),
        ("sporty", ["sporty", "sport", "athletic"], ["运动", "运动风", "运动感"]),
        ("outdoor", ["outdoor", "camping", "adventure"], ["户外", "露营", "探险"]),
        ("streetwear", ["streetwear", "street", "urban"], ["街头", "潮牌", "潮流"]),
        ("y2k", ["y2k", "millennium style"], ["千禧风", "千禧"]),
        ("art_deco", ["art deco", "deco", "gatsby"], ["装饰艺术", "艺术装饰", "盖茨比"]),
        ("zen", ["zen", "wabi sabi", "mindful"], ["禅意", "侘寂", "侘寂风"]),
        ("kraft", ["kraft paper", "kraft", "recycled paper"], ["牛皮纸", "再生纸"]),
    ],
}


def normalise(s):
    s = unicodedata.normalize("NFKC", s).lower()
    s = s.replace("-", " ").replace("_", " ")
    return re.sub(r"\s+", " ", s).strip()


def _ascii_alnum(c):
    return c.isascii() and c.isalnum()


def build_vocabulary():
    terms = []
    for g in GROUPS:
        for tid, en, zh in TERMS[g]:
            terms.append({"index": len(terms), "id": f"{g}:{tid}", "group": g, "en": en, "zh": zh})
    seen = {}
    for t in terms:
        for s in t["en"] + t["zh"]:
            n = normalise(s)
            assert n, (t["id"], s)
            assert n not in seen or seen[n] == t["id"], f"synonym {s!r} in {seen.get(n)} and {t['id']}"
            assert n not in seen, f"duplicate synonym {s!r} within {t['id']}"
            seen[n] = t["id"]
    return {"version": "1.0.0", "groups": GROUPS, "terms": terms}


FIELD_GROUPS = {
    "product": ["product"],
    "audience": ["audience"],
    "mood": ["mood", "season", "occasion"],
    "palette": ["palette"],
    "keywords": GROUPS,
}


class Encoder:
    """Python mirror of the Rust reference encoder (contract section 'Encoding a brief')."""

    def __init__(self, vocab):
        self.vocab = vocab
        self.V = len(vocab["terms"])
        self.exact = {}      # (group, normalised synonym) -> index
        self.all_syn = []    # (normalised synonym, index, ascii_only)
        for t in vocab["terms"]:
            for s in t["en"] + t["zh"]:
                n = normalise(s)
                self.exact[(t["group"], n)] = t["index"]
                if len(n) >= 2:
                    self.all_syn.append((n, t["index"], all(ord(c) < 128 for c in n)))
        self.all_syn.sort()

    @staticmethod
    def _contains_word(hay, needle):
        start = 0
        while True:
            i = hay.find(needle, start)
            if i < 0:
                return False
            j = i + len(needle)
            # contract: the characters around an ASCII-only synonym must not be ASCII letters or digits
            # (so `ins风` matches `ins`, `steam` does not match `tea`); str.isalnum alone would also reject CJK
            before_ok = i == 0 or not _ascii_alnum(hay[i - 1])
            after_ok = j == len(hay) or not _ascii_alnum(hay[j])
            if before_ok and after_ok:
                return True
            start = i + 1

    def match(self, field, value):
        n = normalise(value)
        hits = set()
        for g in FIELD_GROUPS[field]:
            if (g, n) in self.exact:
                hits.add(self.exact[(g, n)])
        if not hits and field == "keywords":
            for syn, idx, ascii_only in self.all_syn:
                if ascii_only:
                    if self._contains_word(n, syn):
                        hits.add(idx)
                elif syn in n:
                    hits.add(idx)
        return sorted(hits)

    def encode(self, brief):
        vec = [0.0] * self.V
        warnings = []
        for field in ("product", "audience", "mood", "palette", "keywords"):
            vals = brief.get(field)
            if vals is None:
                continue
            if isinstance(vals, str):
                vals = [vals]
            for v in vals:
                hits = self.match(field, v)
                if not hits:
                    warnings.append(f"{field}: {v!r} matches no vocabulary term")
                for i in hits:
                    vec[i] = 1.0
        return vec, warnings
