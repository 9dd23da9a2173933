"""Words the generator builds names, addresses and loan fields from.

Plain data, no randomness: the world draws from these lists with its own random streams.

>>> len(REGIONS), REGIONS[0]
(10, ('北京', '110101'))
>>> LOOKALIKE["伟"], CATEGORY_NAME["lender"], DISTRICTS["深圳"][0]
('玮', '小额贷款', '南山区')
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = ("brokerage", "real_estate", "lender", "crypto")

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉兰萍红建文辉力燕鹏斌宇浩凯晨欣怡婷雪琳峰波宁鑫琴佳颖琪萌涵博然子轩梓诚俊雅思嘉晓东海宏志国庆春"
)
# similar-looking / -sounding replacement characters for look-alike names
LOOKALIKE = dict(
    zip("伟芳娜敏静丽强磊军洋勇艳杰涛明超", "玮方那民晶莉墙垒君阳永燕洁滔鸣朝", strict=True)
)
REGIONS = [
    ("北京", "110101"),
    ("上海", "310101"),
    ("广州", "440103"),
    ("深圳", "440303"),
    ("杭州", "330102"),
    ("南京", "320102"),
    ("成都", "510104"),
    ("武汉", "420102"),
    ("西安", "610102"),
    ("重庆", "500101"),
]
# districts of each city (the address of a party names its region's city and one of these)
DISTRICTS: dict[str, tuple[str, ...]] = {
    "北京": ("东城区", "西城区", "朝阳区", "海淀区", "丰台区"),
    "上海": ("黄浦区", "徐汇区", "静安区", "浦东新区", "长宁区"),
    "广州": ("天河区", "越秀区", "海珠区", "荔湾区", "白云区"),
    "深圳": ("南山区", "福田区", "罗湖区", "宝安区", "龙岗区"),
    "杭州": ("上城区", "西湖区", "拱墅区", "滨江区", "余杭区"),
    "南京": ("鼓楼区", "玄武区", "秦淮区", "建邺区", "栖霞区"),
    "成都": ("锦江区", "青羊区", "武侯区", "成华区", "金牛区"),
    "武汉": ("江岸区", "江汉区", "武昌区", "洪山区", "汉阳区"),
    "西安": ("新城区", "碑林区", "雁塔区", "未央区", "莲湖区"),
    "重庆": ("渝中区", "江北区", "南岸区", "沙坪坝区", "九龙坡区"),
}
assert set(DISTRICTS) == {c for c, _ in REGIONS}
assert len({d for ds in DISTRICTS.values() for d in ds}) == 5 * len(DISTRICTS)  # one city each
ROADS = [
    "人民路",
    "解放路",
    "中山路",
    "建设路",
    "和平路",
    "新华路",
    "胜利路",
    "长江路",
    "黄河路",
    "光明路",
    "友谊路",
    "科技路",
]
INDUSTRIES = [
    "manufacturing",
    "wholesale",
    "retail",
    "catering",
    "construction",
    "technology",
    "logistics",
    "agriculture",
    "utilities",
    "services",
]
INDUSTRY_CN = {
    "manufacturing": "制造",
    "wholesale": "贸易",
    "retail": "商贸",
    "catering": "餐饮",
    "construction": "建设工程",
    "technology": "科技",
    "logistics": "物流",
    "agriculture": "农业",
    "utilities": "公用事业",
    "services": "服务",
    "finance": "金融",
    "real_estate": "置业",
}
CATEGORY_INDUSTRY = {
    "brokerage": "finance",
    "real_estate": "real_estate",
    "lender": "finance",
    "crypto": "technology",
}
CATEGORY_NAME = {
    "brokerage": "证券",
    "real_estate": "房地产开发",
    "lender": "小额贷款",
    "crypto": "数字资产",
}
WORDS = list("华信达通盛恒泰鑫源宏丰瑞祥隆昌兴安康利美嘉和宇航金")
PRODUCTS = {
    "person": ["personal_business", "consumer", "mortgage"],
    "company": ["working_capital", "fixed_asset", "trade_finance"],
}
PURPOSES = [
    "purchase raw materials",
    "equipment",
    "working capital",
    "inventory",
    "renovation",
    "expansion",
    "trade settlement",
]
BRANCHES = [f"BR{i:03d}" for i in range(1, 41)]
