"""Brief vocabulary (English + Simplified Chinese synonyms) and the contract's
normalise/match/encode rules (docs/bundle-format.md, "Encoding a brief")."""
import re
import unicodedata

GROUPS = ["product", "audience", "mood", "season", "occasion", "palette", "keyword"]

# (id, [en synonyms], [zh synonyms]); the first en synonym is the canonical term. Synonyms are the words
# designers and store staff type; paraphrases beyond these are the text encoder's job, not this list's.
TERMS = {
    "product": [
        ("beverage", ["beverage", "drink", "drinks", "soft drink", "juice", "sparkling water", "soda", "cola", "lemonade", "fizzy drink"], ["饮料", "饮品", "软饮", "果汁", "气泡水", "汽水", "可乐", "碳酸饮料", "柠檬水"]),
        ("tea", ["tea", "milk tea", "tea drink", "tea leaves", "bubble tea", "boba", "green tea", "black tea", "tea bags"], ["茶", "茶叶", "茶饮", "奶茶", "珍珠奶茶", "绿茶", "红茶", "茶包", "花茶", "普洱"]),
        ("coffee", ["coffee", "coffee beans", "cold brew", "latte", "espresso", "instant coffee", "drip coffee"], ["咖啡", "咖啡豆", "冷萃", "拿铁", "速溶咖啡", "挂耳咖啡", "咖啡胶囊"]),
        ("snacks", ["snacks", "snack", "chips", "crisps", "nuts", "popcorn", "puffed snacks"], ["零食", "休闲食品", "薯片", "坚果", "膨化食品", "爆米花", "辣条"]),
        ("confectionery", ["confectionery", "candy", "sweets", "chocolate", "gummies", "lollipop", "chewing gum", "marshmallow"], ["糖果", "巧克力", "甜食", "软糖", "棒棒糖", "口香糖", "棉花糖"]),
        ("dairy", ["dairy", "milk", "yogurt", "yoghurt", "cheese", "butter", "fresh milk"], ["乳制品", "牛奶", "酸奶", "奶酪", "黄油", "鲜奶", "奶片"]),
        ("cosmetics", ["cosmetics", "makeup", "make up", "lipstick", "lip gloss", "eyeshadow", "foundation", "mascara", "blush"], ["彩妆", "化妆品", "口红", "唇釉", "眼影", "粉底", "睫毛膏", "腮红"]),
        ("skincare", ["skincare", "skin care", "serum", "face cream", "moisturiser", "moisturizer", "toner", "face mask", "sheet mask"], ["护肤", "护肤品", "精华", "面霜", "面膜", "爽肤水", "乳液", "水乳", "眼霜"]),
        ("fragrance", ["fragrance", "perfume", "scent", "eau de parfum", "cologne"], ["香水", "香氛", "淡香水", "古龙水"]),
        ("baby_care", ["baby care", "baby products", "infant care", "diapers", "nappies", "baby wipes"], ["母婴", "婴儿用品", "婴童", "纸尿裤", "尿不湿", "婴儿湿巾"]),
        ("pet_food", ["pet food", "dog food", "cat food", "pet treats", "kibble", "cat treats", "dog treats"], ["宠物食品", "狗粮", "猫粮", "宠物零食", "猫条", "猫罐头"]),
        ("household", ["household", "cleaning", "home care", "detergent", "laundry detergent", "dish soap", "tissues", "paper towels"], ["家居清洁", "日用品", "洗涤剂", "家清", "洗衣液", "洗洁精", "纸巾", "抽纸", "消毒液"]),
        ("electronics", ["electronics", "gadget", "consumer electronics", "smart watch", "smartwatch", "tablet", "camera", "smart home"], ["电子产品", "数码", "数码产品", "智能手表", "平板", "相机", "智能家居", "3C数码"]),
        ("toys", ["toys", "toy", "board games", "plush", "blind box", "building blocks", "puzzle"], ["玩具", "益智玩具", "桌游", "盲盒", "毛绒玩具", "积木", "拼图", "潮玩"]),
        ("wine_spirits", ["wine & spirits", "wine and spirits", "wine", "spirits", "liquor", "whisky", "whiskey", "red wine", "sake", "gin", "vodka"], ["酒", "葡萄酒", "烈酒", "酒类", "红酒", "威士忌", "清酒", "洋酒", "果酒", "黄酒"]),
        ("health_supplements", ["health supplements", "supplements", "vitamins", "nutrition", "probiotics", "collagen", "fish oil"], ["保健品", "营养补充剂", "维生素", "营养品", "益生菌", "胶原蛋白", "鱼油", "钙片"]),
        ("frozen_food", ["frozen food", "frozen", "dumplings", "frozen meals", "frozen pizza", "ready meals"], ["冷冻食品", "速冻食品", "速冻", "水饺", "速冻饺子", "预制菜"]),
        ("bakery", ["bakery", "bread", "pastry", "cake", "cakes", "croissant"], ["烘焙", "面包", "糕点", "蛋糕", "西点", "吐司", "点心"]),
        ("stationery", ["stationery", "notebook", "pens", "pencils", "stickers", "washi tape", "planner"], ["文具", "文创", "笔记本", "贴纸", "手账", "和纸胶带", "本子"]),
        ("apparel", ["apparel", "clothing", "fashion", "socks", "t shirt", "t shirts", "shoes", "sneakers", "underwear"], ["服装", "服饰", "时装", "袜子", "T恤", "鞋子", "运动鞋", "内衣", "衣服"]),
        ("ice_cream", ["ice cream", "gelato", "popsicle", "ice lolly", "ice pop"], ["冰淇淋", "雪糕", "冰激凌", "冰棍", "冰棒", "甜筒"]),
        ("craft_beer", ["craft beer", "beer", "lager", "ipa", "ale", "stout"], ["精酿啤酒", "啤酒", "精酿", "扎啤"]),
        ("mooncake", ["mooncake", "mooncakes", "moon cake", "moon cakes"], ["月饼", "月饼礼盒", "冰皮月饼", "广式月饼"]),
        ("condiments", ["condiments", "sauce", "seasoning", "spices", "soy sauce", "vinegar", "chili sauce", "ketchup", "chilli oil"], ["调味品", "酱料", "调料", "酱油", "醋", "辣椒酱", "番茄酱", "蚝油", "辣椒油"]),
        ("instant_noodles", ["instant noodles", "noodles", "ramen", "cup noodles", "instant ramen", "pot noodles"], ["方便面", "泡面", "面条", "杯面", "螺蛳粉", "速食面"]),
        ("personal_care", ["personal care", "body wash", "shower gel", "soap", "hand wash", "deodorant", "body lotion"], ["个护", "沐浴露", "洗护", "香皂", "洗手液", "身体乳", "止汗露"]),
        ("jewellery", ["jewellery", "jewelry", "accessories", "necklace", "earrings", "rings", "bracelet"], ["珠宝", "首饰", "饰品", "项链", "耳环", "戒指", "手链"]),
        ("fresh_produce", ["fresh produce", "fruit", "vegetables", "fresh fruit", "veggies", "greens box"], ["生鲜", "水果", "蔬菜", "果蔬", "鲜果", "有机蔬菜"]),
        ("home_fragrance", ["home fragrance", "candle", "candles", "diffuser", "scented candle", "reed diffuser", "incense"], ["家居香氛", "香薰", "蜡烛", "香薰蜡烛", "扩香", "线香", "香薰机"]),
        ("energy_drink", ["energy drink", "energy drinks", "sports drink", "sports drinks", "electrolyte drink", "isotonic drink"], ["能量饮料", "功能饮料", "运动饮料", "电解质水", "电解质饮料", "提神饮料"]),
        ("bottled_water", ["bottled water", "mineral water", "water", "spring water", "still water", "drinking water"], ["矿泉水", "饮用水", "纯净水", "瓶装水", "天然水", "山泉水"]),
        ("plant_milk", ["plant milk", "oat milk", "soy milk", "almond milk", "plant based milk", "coconut milk"], ["植物奶", "燕麦奶", "豆奶", "杏仁奶", "豆浆", "椰奶", "植物蛋白饮料"]),
        ("protein_powder", ["protein powder", "protein", "whey", "whey protein", "sports nutrition", "protein bar"], ["蛋白粉", "乳清蛋白", "增肌粉", "运动营养", "蛋白棒"]),
        ("baby_formula", ["baby formula", "infant formula", "formula milk", "milk powder"], ["奶粉", "婴儿奶粉", "配方奶粉", "婴幼儿奶粉", "配方奶"]),
        ("cereal", ["cereal", "breakfast cereal", "oats", "oatmeal", "granola", "muesli"], ["麦片", "燕麦片", "早餐谷物", "谷物麦片", "格兰诺拉"]),
        ("biscuits", ["biscuits", "cookies", "crackers", "wafers", "shortbread"], ["饼干", "曲奇", "苏打饼干", "威化", "夹心饼干"]),
        ("honey", ["honey", "jam", "spreads", "peanut butter", "syrup", "preserves"], ["蜂蜜", "果酱", "花生酱", "蜂蜜制品", "糖浆"]),
        ("rice_grains", ["rice", "flour", "grains", "whole grains", "rice and grains"], ["大米", "面粉", "杂粮", "五谷杂粮", "粮油", "谷物", "米"]),
        ("seafood", ["seafood", "fish", "shrimp", "prawns", "dried seafood", "canned fish"], ["海鲜", "海产", "海产品", "鱼", "虾", "海味"]),
        ("meat_snacks", ["meat snacks", "jerky", "beef jerky", "sausage", "sausages", "braised meat"], ["肉干", "牛肉干", "香肠", "卤味", "肉脯", "鸭脖", "熟食"]),
        ("haircare", ["haircare", "hair care", "shampoo", "conditioner", "hair oil", "hair products"], ["洗发水", "护发素", "护发", "洗发", "发膜", "洗发露"]),
        ("oral_care", ["oral care", "toothpaste", "toothbrush", "mouthwash", "dental care"], ["口腔护理", "牙膏", "牙刷", "漱口水", "口腔清洁"]),
        ("sunscreen", ["sunscreen", "sunblock", "sun cream", "spf", "sun protection"], ["防晒", "防晒霜", "防晒乳", "防晒喷雾", "防晒霜乳"]),
        ("phone_accessories", ["phone accessories", "phone case", "phone cases", "charger", "charging cable", "power bank"], ["手机配件", "手机壳", "充电器", "数据线", "充电宝"]),
        ("headphones", ["headphones", "earbuds", "earphones", "headset", "speaker", "bluetooth speaker"], ["耳机", "蓝牙耳机", "无线耳机", "音箱", "蓝牙音箱", "耳麦"]),
        ("books", ["books", "book", "novel", "picture book", "magazine"], ["图书", "书籍", "书", "绘本", "杂志", "小说"]),
        ("flowers", ["flowers", "fresh flowers", "bouquet", "florist", "potted plants", "house plants"], ["鲜花", "花束", "花礼", "绿植", "盆栽", "花店"]),
        ("kitchenware", ["kitchenware", "cookware", "tableware", "cups", "mugs", "bowls", "pots and pans"], ["厨具", "餐具", "杯子", "马克杯", "锅具", "厨房用品", "碗"]),
        ("otc_medicine", ["otc medicine", "otc", "medicine", "pharmacy", "cold medicine", "painkillers", "over the counter"], ["非处方药", "药品", "药", "感冒药", "医药", "药店"]),
        ("baijiu", ["baijiu", "chinese liquor", "chinese spirits", "sorghum liquor"], ["白酒", "酱香酒", "浓香型白酒", "高粱酒", "酱酒"]),
        ("feminine_care", ["feminine care", "sanitary pads", "tampons", "period care", "menstrual pads", "panty liners"], ["卫生巾", "女性护理", "护垫", "经期护理", "卫生棉条", "姨妈巾"]),
        ("hot_pot", ["hot pot", "hotpot", "hot pot base", "hot pot seasoning", "self heating hot pot"], ["火锅", "火锅底料", "自热火锅", "火锅料", "麻辣烫"]),
    ],
    "audience": [
        ("young_women", ["young women", "young woman", "women", "female", "girls", "ladies"], ["年轻女性", "女性", "女生", "年轻女生", "小姐姐", "都市女性"]),
        ("gen_z", ["gen z", "generation z", "zoomers"], ["Z世代", "00后", "95后", "z时代"]),
        ("kids", ["kids", "children", "child"], ["儿童", "孩子", "小朋友"]),
        ("parents", ["parents", "moms", "mothers", "mums", "dads"], ["父母", "宝妈", "妈妈", "爸妈", "宝爸"]),
        ("seniors", ["seniors", "elderly", "older adults", "older people", "grandparents"], ["老年人", "银发族", "长辈", "老人", "爷爷奶奶"]),
        ("men", ["men", "male", "guys", "gentlemen"], ["男性", "男士", "男生", "男人"]),
        ("professionals", ["professionals", "office workers", "white collar"], ["职场人士", "白领", "上班族", "打工人"]),
        ("luxury_buyers", ["luxury buyers", "high end consumers", "affluent"], ["高端消费者", "高净值人群", "奢侈品消费者"]),
        ("students", ["students", "college students", "university students"], ["学生", "大学生", "学生党"]),
        ("eco_conscious", ["eco conscious", "green consumers", "sustainability minded"], ["环保人士", "环保主义者", "绿色消费者"]),
        ("fitness", ["fitness enthusiasts", "athletes", "gym goers"], ["健身人群", "运动爱好者", "健身爱好者"]),
        ("gamers", ["gamers", "gaming"], ["游戏玩家", "玩家", "电竞"]),
        ("pet_owners", ["pet owners", "pet parents"], ["宠物主人", "铲屎官"]),
        ("foodies", ["foodies", "food lovers"], ["吃货", "美食爱好者"]),
        ("millennials", ["millennials", "gen y"], ["千禧一代", "90后", "80后"]),
        ("babies", ["babies", "baby", "infants", "toddlers", "newborns"], ["宝宝", "婴幼儿", "婴儿", "幼儿", "新生儿"]),
        ("teens", ["teens", "teenagers", "teen", "adolescents", "high schoolers"], ["青少年", "中学生", "少年", "10后", "高中生"]),
        ("newlyweds", ["newlyweds", "newly weds", "just married", "bride and groom"], ["新婚夫妇", "新人", "新婚", "新娘", "新婚夫妻"]),
        ("expecting_mothers", ["expecting mothers", "pregnant women", "moms to be", "mums to be", "expectant mothers"], ["孕妇", "准妈妈", "孕妈", "孕期", "孕妈妈"]),
        ("new_parents", ["new parents", "new moms", "new mums", "new dads"], ["新手爸妈", "新手妈妈", "新手爸爸", "新手父母"]),
        ("families", ["families", "family", "whole family", "family pack", "family size"], ["家庭", "全家", "一家人", "家庭装", "全家人"]),
        ("couples", ["couples", "couple", "partners", "lovers"], ["情侣", "夫妻", "恋人", "情侣款", "小两口"]),
        ("singles", ["singles", "living alone", "solo", "single serve", "solo dwellers"], ["单身", "独居", "一人食", "单身人士", "独居青年"]),
        ("tourists", ["tourists", "travellers", "travelers", "visitors", "souvenir"], ["游客", "旅行者", "旅游纪念品", "文旅", "纪念品"]),
        ("middle_aged", ["middle aged", "middle aged adults", "midlife", "people in their 40s", "over 40s"], ["中年人", "中年", "70后", "熟龄", "中年群体"]),
    ],
    "mood": [
        ("fresh", ["fresh", "refreshing", "crisp"], ["清新", "清爽", "新鲜", "爽口"]),
        ("calm", ["calm", "serene", "tranquil", "relaxing"], ["宁静", "平静", "舒缓", "安静"]),
        ("playful", ["playful", "fun", "whimsical"], ["俏皮", "有趣", "趣味", "好玩"]),
        ("premium", ["premium", "high end", "upscale", "luxurious", "luxury", "sophisticated"], ["高级感", "高端", "奢华", "轻奢", "高级"]),
        ("bold", ["bold", "striking", "impactful", "loud"], ["大胆", "醒目", "张扬", "冲击力"]),
        ("natural", ["natural", "organic", "earthy", "pure"], ["自然", "天然", "有机", "纯净"]),
        ("nostalgic", ["nostalgic", "retro", "old school"], ["怀旧", "复古", "老派", "年代感"]),
        ("futuristic", ["futuristic", "techy", "sci fi", "high tech"], ["未来感", "科技感", "科幻", "未来"]),
        ("cute", ["cute", "adorable", "kawaii", "lovely"], ["可爱", "软萌", "卡哇伊", "萌系"]),
        ("elegant", ["elegant", "graceful", "refined", "classy"], ["优雅", "典雅", "精致", "高雅"]),
        ("energetic", ["energetic", "dynamic", "vibrant", "lively"], ["活力", "动感", "充满活力", "元气"]),
        ("warm", ["warm", "warmth", "heartwarming"], ["温暖", "暖心", "暖色调"]),
        ("cool", ["cool", "icy", "chill"], ["清凉", "冰爽", "凉爽"]),
        ("minimal", ["minimal", "minimalist", "simple", "clean", "understated"], ["简约", "极简", "简洁", "简单"]),
        ("festive", ["festive", "celebratory", "joyful"], ["喜庆", "节日氛围", "欢乐"]),
        ("romantic", ["romantic", "love"], ["浪漫", "爱意", "浪漫感"]),
        ("sweet", ["sweet", "sugary"], ["甜美", "甜蜜", "甜"]),
        ("mysterious", ["mysterious", "moody", "dark"], ["神秘", "暗黑", "暗黑风"]),
        ("traditional", ["traditional", "heritage", "classic"], ["传统", "经典", "古典", "古风"]),
        ("healthy", ["healthy", "wholesome", "nutritious"], ["健康", "营养", "健康感"]),
        ("gentle", ["gentle", "mild", "soft"], ["温和", "柔和", "温柔"]),
        ("trustworthy", ["trustworthy", "reliable", "safe"], ["安心", "可靠", "信赖", "安全"]),
        ("artistic", ["artistic", "creative", "artsy"], ["艺术感", "文艺", "创意"]),
        ("rustic", ["rustic", "farmhouse", "homespun"], ["乡村", "田园", "质朴"]),
        ("dreamy", ["dreamy", "ethereal", "fairy tale", "fairytale", "magical"], ["梦幻", "梦幻感", "仙气", "童话", "童话感", "空灵"]),
        ("cozy", ["cozy", "cosy", "homely", "snug", "hygge"], ["温馨", "舒适", "惬意", "居家感", "松弛感"]),
        ("edgy", ["edgy", "rebellious", "badass", "attitude", "punk"], ["酷", "酷飒", "叛逆", "不羁", "有态度", "酷酷的"]),
        ("healing", ["healing", "soothing", "comforting", "therapeutic"], ["治愈", "治愈系", "疗愈", "治愈感", "抚慰"]),
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
        ("christmas", ["christmas", "xmas", "holiday season", "christmas eve"], ["圣诞", "圣诞节", "圣诞季", "平安夜"]),
        ("valentines", ["valentine's day", "valentines", "valentine", "valentines day"], ["情人节", "214情人节", "西方情人节"]),
        ("gift", ["gift", "gifting", "gift box", "present"], ["礼盒", "礼品", "送礼", "伴手礼"]),
        ("back_to_school", ["back to school", "new semester"], ["开学季", "开学", "新学期"]),
        ("halloween", ["halloween", "trick or treat"], ["万圣节", "万圣", "南瓜灯"]),
        ("shopping_festival", ["singles day", "double 11", "618", "double 12", "black friday"], ["双十一", "双11", "购物节", "双十二", "大促"]),
        ("dragon_boat", ["dragon boat festival", "duanwu", "dragon boat", "zongzi"], ["端午", "端午节", "粽子", "端午安康"]),
        ("wedding", ["wedding", "wedding favours", "wedding favors"], ["婚礼", "喜糖", "结婚"]),
        ("limited_edition", ["limited edition", "collab", "collaboration", "limited"], ["限定", "限量", "限量版", "联名"]),
        ("lantern_festival", ["lantern festival", "yuanxiao", "yuanxiao festival", "shangyuan festival"], ["元宵", "元宵节", "闹元宵", "汤圆", "灯会"]),
        ("qixi", ["qixi", "qixi festival", "chinese valentine's day", "double seventh festival"], ["七夕", "七夕节", "七夕情人节", "乞巧节"]),
        ("easter", ["easter", "easter egg", "easter eggs", "easter bunny"], ["复活节", "复活节彩蛋", "复活节兔子", "复活节礼物"]),
        ("thanksgiving", ["thanksgiving", "thanksgiving day", "turkey day"], ["感恩节", "感恩节礼物", "感恩节大餐", "感恩季"]),
        ("mothers_day", ["mother's day", "mothers day", "mothers' day", "mum's day"], ["母亲节", "母亲节礼物", "妈妈节"]),
        ("fathers_day", ["father's day", "fathers day", "fathers' day"], ["父亲节", "父亲节礼物", "爸爸节"]),
        ("childrens_day", ["children's day", "childrens day", "kids day", "june 1st"], ["六一", "儿童节", "六一儿童节", "61儿童节"]),
        ("new_year", ["new year", "new year's day", "new years day", "new year's eve", "nye"], ["元旦", "跨年", "元旦节", "新年元旦"]),
        ("womens_day", ["women's day", "womens day", "international women's day", "goddess day", "march 8"], ["女神节", "妇女节", "三八节", "38节", "女王节"]),
        ("graduation", ["graduation", "graduation season", "grad", "graduates"], ["毕业季", "毕业", "毕业礼物", "毕业典礼"]),
        ("birthday", ["birthday", "birthday party", "bday", "birthday gift"], ["生日", "生日礼物", "生日派对", "生日快乐"]),
        ("national_day", ["national day", "golden week", "october 1st"], ["国庆", "国庆节", "十一黄金周", "黄金周", "国庆假期"]),
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
        ("vivid", ["vivid", "bright colours", "bright colors", "saturated"], ["鲜艳", "高饱和", "撞色", "高饱和度"]),
        ("ocean", ["ocean", "ocean blues", "coastal"], ["海洋色", "海蓝", "海洋蓝"]),
        ("botanical_greens", ["botanical greens", "greens", "forest green"], ["森林绿", "绿色系", "植物绿"]),
        ("cream", ["cream", "beige", "neutrals", "warm neutrals"], ["奶油色", "米色", "中性色", "奶白色"]),
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
        ("floral", ["floral", "flower", "florals", "flower pattern"], ["花卉", "花朵", "碎花"]),
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
        ("zen", ["zen", "mindful"], ["禅意", "禅", "禅意风"]),
        ("kraft", ["kraft paper", "kraft", "recycled paper"], ["牛皮纸", "再生纸"]),
        ("cream_style", ["cream style", "creamy", "creamy style", "cream aesthetic", "cream core"], ["奶油风", "奶油感", "奶呼呼", "奶系", "奶油风格"]),
        ("log_wood", ["log wood", "natural wood", "light wood", "wood style", "muji style"], ["原木风", "原木", "木质感", "原木色", "无印风"]),
        ("french", ["french", "french chic", "french style", "parisian", "paris chic"], ["法式", "法式风", "法式浪漫", "法式复古", "巴黎风"]),
        ("maximalism", ["maximalism", "maximalist", "more is more", "maximal"], ["极繁主义", "极繁", "繁复", "极繁风"]),
        ("barbiecore", ["barbiecore", "barbie", "barbie pink", "barbie style"], ["芭比粉", "芭比风", "芭比", "芭比色"]),
        ("old_money", ["old money", "old money style", "preppy", "heritage preppy"], ["老钱风", "老钱", "学院风", "老钱穿搭"]),
        ("brutalist", ["brutalist", "brutalism", "neo brutalism", "neubrutalism"], ["粗野主义", "新粗野主义", "粗野风", "野性主义"]),
        ("dopamine", ["dopamine", "dopamine colours", "dopamine colors", "dopamine dressing", "dopamine style"], ["多巴胺", "多巴胺配色", "多巴胺风", "多巴胺穿搭", "多巴胺色"]),
        ("maillard", ["maillard", "maillard style", "maillard browns", "maillard colours"], ["美拉德", "美拉德风", "美拉德色系", "美拉德配色", "美拉德穿搭"]),
        ("quiet_luxury", ["quiet luxury", "stealth wealth", "understated luxury", "quiet luxe"], ["静奢风", "静奢", "低调奢华", "低奢", "静奢感"]),
        ("wabi_sabi", ["wabi sabi", "wabisabi", "imperfect beauty"], ["侘寂", "侘寂风", "侘寂美学", "残缺美"]),
        ("bauhaus", ["bauhaus", "bauhaus style", "primary colours", "primary colors"], ["包豪斯", "包豪斯风", "三原色", "包豪斯风格"]),
        ("memphis", ["memphis", "memphis design", "memphis style", "squiggles"], ["孟菲斯", "孟菲斯风", "孟菲斯风格", "孟菲斯设计"]),
        ("vaporwave", ["vaporwave", "vapor wave", "synthwave", "retrowave"], ["蒸汽波", "蒸汽波风", "蒸汽波风格", "合成器浪潮"]),
        ("cottagecore", ["cottagecore", "cottage core", "pastoral", "countryside"], ["田园风", "森系", "田园牧歌", "英式田园", "乡村风"]),
        ("japandi", ["japandi", "japanese scandinavian", "scandi japanese", "japandi style"], ["日式北欧", "北欧日式", "日式极简", "和风北欧"]),
        ("boho", ["boho", "bohemian", "boho chic", "bohemian style"], ["波西米亚", "波西米亚风", "波希米亚", "民族风"]),
        ("industrial", ["industrial", "industrial style", "raw concrete", "concrete"], ["工业风", "工业风格", "水泥风", "工业感"]),
        ("korean_style", ["korean style", "korean", "k style", "k beauty style"], ["韩系", "韩式", "韩风", "韩系风", "韩国风"]),
        ("japanese_style", ["japanese style", "japanese", "j style", "wafu"], ["日系", "日式", "日系风", "和风", "日本风"]),
        ("pop_art", ["pop art", "pop art style", "comic dots", "halftone", "warhol"], ["波普", "波普艺术", "波普风", "波点漫画"]),
        ("dark_academia", ["dark academia", "old library", "academia", "dark academic"], ["暗黑学院风", "学院暗黑", "暗黑学院", "复古学院风"]),
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
