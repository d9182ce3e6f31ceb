"""What a slip says: invented people, companies, banks and transactions, drawn from a seeded generator.

All banks and companies are fictitious. Names come with their pinyin, as slips often print both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

import numpy as np

from harness.corpus.amounts import FIGURE_STYLES, amount_in_words, format_figure, normalised
from harness.corpus.identifiers import account_number, card_number, group4

T = TypeVar("T")

_SURNAMES = (
    ("王", "Wang"), ("李", "Li"), ("张", "Zhang"), ("刘", "Liu"), ("陈", "Chen"), ("杨", "Yang"), ("黄", "Huang"),
    ("赵", "Zhao"), ("吴", "Wu"), ("周", "Zhou"), ("徐", "Xu"), ("孙", "Sun"), ("马", "Ma"), ("朱", "Zhu"),
    ("胡", "Hu"), ("郭", "Guo"), ("何", "He"), ("林", "Lin"), ("高", "Gao"), ("罗", "Luo"), ("郑", "Zheng"),
    ("梁", "Liang"), ("谢", "Xie"), ("宋", "Song"), ("唐", "Tang"), ("韩", "Han"), ("冯", "Feng"), ("邓", "Deng"),
    ("曹", "Cao"), ("彭", "Peng"), ("曾", "Zeng"), ("萧", "Xiao"), ("田", "Tian"), ("董", "Dong"), ("潘", "Pan"),
    ("袁", "Yuan"), ("蔡", "Cai"), ("蒋", "Jiang"), ("余", "Yu"), ("杜", "Du"), ("叶", "Ye"), ("程", "Cheng"),
    ("魏", "Wei"), ("苏", "Su"), ("吕", "Lyu"), ("丁", "Ding"), ("沈", "Shen"), ("姚", "Yao"), ("崔", "Cui"),
    ("钟", "Zhong"), ("谭", "Tan"), ("陆", "Lu"), ("范", "Fan"), ("金", "Jin"), ("廖", "Liao"), ("贾", "Jia"),
    ("夏", "Xia"), ("方", "Fang"), ("邹", "Zou"), ("熊", "Xiong"), ("邱", "Qiu"), ("薛", "Xue"), ("欧阳", "Ouyang"),
    ("司马", "Sima"), ("诸葛", "Zhuge"),
)
_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("强", "qiang"),
    ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"), ("娟", "juan"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀", "xiu"), ("霞", "xia"), ("平", "ping"), ("刚", "gang"),
    ("英", "ying"), ("华", "hua"), ("玉", "yu"), ("兰", "lan"), ("建", "jian"), ("国", "guo"), ("文", "wen"),
    ("辉", "hui"), ("红", "hong"), ("鹏", "peng"), ("志", "zhi"), ("宇", "yu"), ("浩", "hao"), ("然", "ran"),
    ("思", "si"), ("雨", "yu"), ("欣", "xin"), ("怡", "yi"), ("梓", "zi"), ("涵", "han"), ("轩", "xuan"),
    ("博", "bo"), ("晨", "chen"), ("瑞", "rui"), ("嘉", "jia"), ("俊", "jun"), ("琳", "lin"), ("婷", "ting"),
    ("雪", "xue"), ("海", "hai"), ("东", "dong"), ("春", "chun"), ("晓", "xiao"), ("慧", "hui"), ("佳", "jia"),
    ("颖", "ying"), ("亮", "liang"), ("斌", "bin"), ("鑫", "xin"), ("峰", "feng"), ("凯", "kai"), ("丹", "dan"),
    ("健", "jian"), ("德", "de"), ("安", "an"), ("庆", "qing"), ("振", "zhen"), ("云", "yun"), ("飞", "fei"),
    ("倩", "qian"), ("蕾", "lei"), ("璐", "lu"), ("薇", "wei"), ("淼", "miao"), ("翀", "chong"), ("昊", "hao"),
)
_CITIES = (
    ("上海", "Shanghai"), ("北京", "Beijing"), ("深圳", "Shenzhen"), ("杭州", "Hangzhou"), ("南京", "Nanjing"),
    ("苏州", "Suzhou"), ("成都", "Chengdu"), ("武汉", "Wuhan"), ("广州", "Guangzhou"), ("天津", "Tianjin"),
    ("重庆", "Chongqing"), ("西安", "Xi'an"), ("宁波", "Ningbo"), ("厦门", "Xiamen"), ("青岛", "Qingdao"),
    ("长沙", "Changsha"), ("合肥", "Hefei"), ("郑州", "Zhengzhou"), ("昆明", "Kunming"), ("佛山", "Foshan"),
)
_PROVINCE_OF = {
    "上海": "上海", "北京": "北京", "深圳": "广东", "杭州": "浙江", "南京": "江苏", "苏州": "江苏", "成都": "四川",
    "武汉": "湖北", "广州": "广东", "天津": "天津", "重庆": "重庆", "西安": "陕西", "宁波": "浙江", "厦门": "福建",
    "青岛": "山东", "长沙": "湖南", "合肥": "安徽", "郑州": "河南", "昆明": "云南", "佛山": "广东",
}
_TRADE_NAMES = (
    ("华盛", "Huasheng"), ("明远", "Mingyuan"), ("鑫源", "Xinyuan"), ("金桥", "Jinqiao"), ("永泰", "Yongtai"),
    ("宏图", "Hongtu"), ("瑞丰", "Ruifeng"), ("嘉禾", "Jiahe"), ("天成", "Tiancheng"), ("博远", "Boyuan"),
    ("安信", "Anxin"), ("汇通", "Huitong"), ("海润", "Hairun"), ("德胜", "Desheng"), ("云帆", "Yunfan"),
    ("东升", "Dongsheng"), ("九洲", "Jiuzhou"), ("星辰", "Xingchen"), ("锦程", "Jincheng"), ("立信", "Lixin"),
)
_INDUSTRIES = (
    ("贸易", "Trading"), ("科技", "Technology"), ("建筑工程", "Construction Engineering"), ("物流", "Logistics"),
    ("餐饮管理", "Catering Management"), ("电子", "Electronics"), ("医疗器械", "Medical Equipment"),
    ("文化传媒", "Culture Media"), ("机械设备", "Machinery"), ("食品", "Food"), ("服饰", "Apparel"),
    ("信息技术", "Information Technology"), ("环保科技", "Environmental Technology"),
    ("供应链管理", "Supply Chain Management"),
)
_SUFFIXES = (("有限公司", "Co., Ltd."), ("股份有限公司", "Co., Ltd."), ("有限责任公司", "Co., Ltd."))
_BRANCH_PLACES = (
    "人民路", "解放路", "中山路", "建设路", "高新区", "经济开发区", "滨江", "城东", "城西", "新城", "南湖", "东门",
    "西湖", "江北", "万达广场", "科技园", "金融街", "大学城", "火车站", "长宁",
)
_PURPOSES = ("货款", "工资", "报销款", "往来款", "服务费", "租金", "还款", "学费", "差旅费", "工程款", "咨询费",
             "投资款", "保证金", "退款", "材料款", "运费")
_SUMMARIES = ("网银转账", "跨行转账", "手机银行转账", "柜面转账", "代发工资", "行内汇款", "实时汇划", "批量代付")
_REMARKS = ("合同号HT-{y}-{n:04d}", "发票号{n:08d}", "{m}月份房租", "第{k}期款", "订单{n:06d}", "无", "往来结算",
            "项目编号XM{y}{n:03d}", "代付{m}月工资", "退还押金")


@dataclass(frozen=True)
class Bank:
    name: str
    english: str
    rgb: tuple[int, int, int]  # house colour for logo and rules
    short: str  # bank code printed on some slips


_BANKS = (
    Bank("华东商业银行", "HUADONG COMMERCIAL BANK", (190, 20, 30), "HDCB"),
    Bank("长江联合银行", "CHANGJIANG UNITED BANK", (0, 70, 150), "CJUB"),
    Bank("中原发展银行", "ZHONGYUAN DEVELOPMENT BANK", (0, 120, 80), "ZYDB"),
    Bank("海港商业银行", "HAIGANG COMMERCIAL BANK", (0, 110, 170), "HGCB"),
    Bank("北方城市银行", "BEIFANG CITY BANK", (200, 90, 0), "BFCB"),
    Bank("江南农村商业银行", "JIANGNAN RURAL COMMERCIAL BANK", (0, 130, 120), "JNRC"),
    Bank("西部振兴银行", "XIBU ZHENXING BANK", (120, 30, 110), "XBZX"),
    Bank("东海银行", "DONGHAI BANK", (20, 40, 110), "DHBK"),
)


@dataclass(frozen=True)
class Party:
    name: str
    name_latin: str
    is_person: bool
    account: str  # digits only
    is_card: bool
    bank: Bank
    branch: str
    city: str
    province: str


@dataclass(frozen=True)
class SlipContent:
    bank: Bank  # the bank issuing the slip
    payer: Party
    payee: Party
    amount: str  # normalised, "12345.67"
    figure: str  # as printed, "¥12,345.67"
    words: str  # 壹万贰仟叁佰肆拾伍元陆角柒分
    date: dt.date
    time: dt.time
    reference: str  # the slip's own serial/reference number
    trace: str  # a second number printed by the teller system
    purpose: str
    summary: str
    remark: str
    branch_code: str
    teller: str
    id_number: str
    phone: str
    verify_code: str
    group_accounts: bool  # print account numbers in groups of four


def choose(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _person(rng: np.random.Generator) -> tuple[str, str]:
    surname, surname_py = choose(rng, _SURNAMES)
    parts = [choose(rng, _GIVEN) for _ in range(int(rng.integers(1, 3)))]
    given = "".join(p[0] for p in parts)
    given_py = "".join(p[1] for p in parts)
    latin = f"{surname_py} {given_py.capitalize()}"
    return surname + given, latin.upper() if rng.random() < 0.5 else latin


def _company(rng: np.random.Generator) -> tuple[str, str]:
    city, city_en = choose(rng, _CITIES)
    trade, trade_en = choose(rng, _TRADE_NAMES)
    industry, industry_en = choose(rng, _INDUSTRIES)
    suffix, suffix_en = choose(rng, _SUFFIXES)
    return city + trade + industry + suffix, f"{city_en} {trade_en} {industry_en} {suffix_en}"


def _party(rng: np.random.Generator, bank: Bank) -> Party:
    is_person = rng.random() < 0.5
    name, latin = _person(rng) if is_person else _company(rng)
    city, _ = choose(rng, _CITIES)
    length = int(rng.integers(16, 20))
    is_card = is_person and rng.random() < 0.8
    account = card_number(rng, length) if is_card else account_number(rng, length)
    suffix = choose(rng, ("支行", "支行", "分理处", "营业部"))
    branch = f"{bank.name}{city}{choose(rng, _BRANCH_PLACES)}{suffix}"
    return Party(name, latin, is_person, account, is_card, bank, branch, city, _PROVINCE_OF[city])


def _amount(rng: np.random.Generator) -> str:
    # Mostly everyday sums, some large, some with zeros inside (壹万零伍元整) to exercise the words.
    kind = rng.random()
    if kind < 0.15:
        round_sum = int(rng.integers(1, 100)) * 10 ** int(rng.integers(2, 6))
        yuan = round_sum + int(rng.integers(0, 10)) * int(rng.random() < 0.5)
        fen = 0
    elif kind < 0.3:
        yuan = int(rng.integers(100_000, 50_000_000))
        fen = int(rng.integers(0, 100))
    elif kind < 0.4:
        yuan = int(rng.integers(0, 10))
        fen = int(rng.integers(1, 100))
    else:
        yuan = int(rng.integers(10, 100_000))
        fen = int(rng.choice([0, 0, int(rng.integers(0, 10)) * 10, int(rng.integers(0, 100))]))
    return normalised(Decimal(yuan) + Decimal(fen) / 100)


def _id_number(rng: np.random.Generator) -> str:
    area = choose(rng, ("310101", "110105", "440305", "330106", "320102", "510107", "420106", "610113"))
    birth = dt.date(1955, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 50)))
    body = area + birth.strftime("%Y%m%d") + "".join(str(d) for d in rng.integers(0, 10, size=3))
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]
    full = body + check
    return full[:6] + "*" * 8 + full[14:] if rng.random() < 0.5 else full


def make_content(rng: np.random.Generator) -> SlipContent:
    bank = choose(rng, _BANKS)
    payer = _party(rng, bank)
    payee = _party(rng, bank if rng.random() < 0.4 else choose(rng, _BANKS))
    amount = _amount(rng)
    date = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 7)))
    time = dt.time(int(rng.integers(8, 21)), int(rng.integers(0, 60)), int(rng.integers(0, 60)))
    reference = date.strftime("%Y%m%d") + "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(8, 13))))
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    trace = choose(rng, ("F", "T", "B", "W")) + "".join(str(d) for d in rng.integers(0, 10, size=15))
    remark = choose(rng, _REMARKS).format(y=date.year, n=int(rng.integers(1, 99999)), m=date.month,
                                          k=int(rng.integers(1, 13)))
    alnum = letters + "23456789"
    verify = "".join(alnum[int(i)] for i in rng.integers(0, len(alnum), size=4)) + "-" + "".join(
        alnum[int(i)] for i in rng.integers(0, len(alnum), size=4))
    return SlipContent(
        bank=bank, payer=payer, payee=payee, amount=amount,
        figure=format_figure(amount, choose(rng, FIGURE_STYLES)), words=amount_in_words(amount),
        date=date, time=time, reference=reference, trace=trace,
        purpose=choose(rng, _PURPOSES), summary=choose(rng, _SUMMARIES), remark=remark,
        branch_code=f"{int(rng.integers(100, 10000)):04d}",
        teller=f"{choose(rng, letters)}{int(rng.integers(0, 100000)):05d}",
        id_number=_id_number(rng), phone=f"1{int(rng.integers(3, 10))}{int(rng.integers(0, 10**9)):09d}",
        verify_code=verify, group_accounts=rng.random() < 0.5,
    )


DATE_STYLES = ("%Y年%m月%d日", "cn_short", "%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d")


def format_date(date: dt.date, style: str) -> str:
    if style == "cn_short":
        return f"{date.year}年{date.month}月{date.day}日"
    return date.strftime(style)


def format_account(account: str, grouped: bool) -> str:
    return group4(account) if grouped else account
