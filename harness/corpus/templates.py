"""The five slip layouts. Each draws on a Canvas from a SlipContent and returns the key fields it printed.

Layouts are tables of cells: pre-printed labels in the form's ink, values in the printer's ink, sometimes
shifted as a misfed dot-matrix printer shifts them, sometimes with English under the Chinese label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.corpus.canvas import RGB, Box, Canvas
from harness.corpus.content import DATE_STYLES, SlipContent, choose, format_account, format_date
from harness.corpus.fonts import FontSet

TEMPLATES = ("e_receipt", "transfer_voucher", "deposit_slip", "withdrawal_slip", "remittance_application")

_PAPERS: tuple[RGB, ...] = ((255, 255, 255), (252, 250, 244), (250, 244, 246), (244, 250, 244), (250, 250, 236))
_FORM_INKS: tuple[RGB, ...] = ((30, 30, 30), (170, 30, 40), (20, 110, 60), (30, 60, 140), (110, 40, 120))
_VALUE_INKS: tuple[RGB, ...] = ((15, 15, 15), (35, 35, 45), (20, 30, 90))


@dataclass(frozen=True)
class Style:
    unit: float  # pixels per layout unit: 1 unit is 1/1600 of the slip width
    paper: RGB
    form_ink: RGB  # pre-printed rules and labels
    value_ink: RGB
    bilingual: bool
    shift: tuple[float, float]  # printer misregistration of the values
    date_style: str

    def px(self, units: float) -> int:
        return max(1, round(units * self.unit))


@dataclass(frozen=True)
class Rendered:
    canvas: Canvas
    fields: dict[str, str]
    features: tuple[str, ...]  # content tags: "bilingual", "seal"


class _Form:
    """Helpers shared by the layouts, bound to one canvas and style."""

    def __init__(self, canvas: Canvas, style: Style, rng: np.random.Generator) -> None:
        self.c, self.s, self.rng = canvas, style, rng

    def label(self, box: Box, zh: str, en: str, *, align: str = "left", size: float = 24) -> None:
        s = self.s
        if s.bilingual and en:
            # Stacked around the cell's middle, so a tall merged cell keeps the pair together.
            x0, y0, x1, y1 = box
            mid = (y0 + y1) / 2
            zh_h, en_h = s.px(size * 1.25), s.px(size * 0.85)
            top = mid - (zh_h + en_h) / 2
            self.c.text_in((x0, top, x1, top + zh_h), zh, size=s.px(size), fill=s.form_ink, align=align)
            self.c.text_in((x0, top + zh_h, x1, top + zh_h + en_h), en, size=s.px(size * 0.62), fill=s.form_ink,
                           align=align)
        else:
            self.c.text_in(box, zh, size=s.px(size), fill=s.form_ink, align=align)

    def labeller(self, zh: str, en: str) -> Callable[[Box], None]:
        return lambda box: self.label(box, zh, en)

    def valuer(self, text: str) -> Callable[[Box], None]:
        return lambda box: self.value(box, text)

    def value(self, box: Box, text: str, *, size: float = 26, align: str = "left", role: str = "sans") -> None:
        if not text:
            return
        dx, dy = self.s.shift
        self.c.text_in(box, text, size=self.s.px(size), fill=self.s.value_ink, align=align, role=role, dx=dx, dy=dy)

    def cell_box(self, box: Box) -> None:
        self.c.rect(box, outline=self.s.form_ink, width=max(1, self.s.px(2)))

    def row(self, x: float, y: float, width: float, height: float,
            cells: Sequence[tuple[float, Callable[[Box], None]]]) -> float:
        """Cells side by side; weights share the width. Returns the row's bottom edge."""
        total = sum(w for w, _ in cells)
        cx = x
        for weight, draw in cells:
            w = width * weight / total
            box = (cx, y, cx + w, y + height)
            self.cell_box(box)
            draw(box)
            cx += w
        return y + height

    def header(self, title: str, title_en: str, top: float) -> float:
        """Logo, bank name and the slip's title; returns the y below it."""
        s, c, bank = self.s, self.c, self.content.bank
        x = s.px(70)
        c.logo(x, top, s.px(64), bank.rgb)
        c.text(x + s.px(80), top + s.px(22), bank.name, role="bold", size=s.px(34), fill=bank.rgb)
        c.text(x + s.px(80), top + s.px(54), bank.english, size=s.px(15), fill=bank.rgb)
        c.text(c.width / 2, top + s.px(32), title, role="serif", size=s.px(48), fill=s.form_ink, anchor="mm")
        y = top + s.px(70)
        if s.bilingual and title_en:
            c.text(c.width / 2, y + s.px(8), title_en, size=s.px(20), fill=s.form_ink, anchor="mm")
            y += s.px(28)
        return y

    content: SlipContent


def _style(rng: np.random.Generator, width: int, *, form_colour: bool) -> Style:
    return Style(
        unit=width / 1600,
        paper=choose(rng, _PAPERS),
        form_ink=choose(rng, _FORM_INKS) if form_colour else (30, 30, 30),
        value_ink=choose(rng, _VALUE_INKS),
        bilingual=bool(rng.random() < 0.35),
        shift=(float(rng.normal(0, 6)), float(rng.normal(0, 4))) if form_colour else (0.0, 0.0),
        date_style=choose(rng, DATE_STYLES),
    )


def _accounts(content: SlipContent) -> tuple[str, str]:
    return (format_account(content.payer.account, content.group_accounts),
            format_account(content.payee.account, content.group_accounts))


def _seal(form: _Form, cx: float, cy: float, centre_text: str) -> None:
    c, s = form.c, form.s
    ring = form.content.bank.name + choose(form.rng, ("", "营业部", "清算中心"))
    c.seal(cx, cy, s.px(float(form.rng.uniform(105, 130))), ring, centre_text, form.rng)


def _key_fields(content: SlipContent, *, payer: bool = True, payee: bool = True) -> dict[str, str]:
    fields = {"amount": content.amount, "amount_words": content.words, "date": content.date.isoformat(),
              "reference": content.reference}
    if payer:
        fields["payer_account"] = content.payer.account
    if payee:
        fields["payee_account"] = content.payee.account
    return fields


def e_receipt(canvas: Canvas, content: SlipContent, style: Style, rng: np.random.Generator) -> Rendered:
    f = _Form(canvas, style, rng)
    f.content = content
    s, c = style, canvas
    y = f.header(choose(rng, ("电子回单", "网上银行电子回单", "客户回单")), "Electronic Receipt", s.px(40))
    y += s.px(18)
    c.text(s.px(70), y, f"记账日期：{format_date(content.date, s.date_style)}", size=s.px(22), fill=s.form_ink)
    c.text(c.width - s.px(70), y, f"回单编号：{content.reference}", size=s.px(22), fill=s.form_ink, anchor="rm")
    y += s.px(26)
    left, width = s.px(60), c.width - s.px(120)
    h = s.px(66 if s.bilingual else 56)
    payer_acc, payee_acc = _accounts(content)
    half = width / 2
    for side, (who, en, party, acc) in enumerate((("付款人", "Payer", content.payer, payer_acc),
                                                   ("收款人", "Payee", content.payee, payee_acc))):
        x0 = left + side * half
        side_box = (x0, y, x0 + half * 0.14, y + 3 * h)
        f.cell_box(side_box)
        f.label(side_box, who, en, align="center")
        rows = (("户名", "Name", party.name), ("账号", "Account No.", acc), ("开户行", "Bank", party.branch))
        for i, (zh, en2, val) in enumerate(rows):
            f.row(x0 + half * 0.14, y + i * h, half * 0.86, h,
                  ((0.24, f.labeller(zh, en2)), (0.76, f.valuer(val))))
    y += 3 * h
    y = f.row(left, y, width, h, ((0.14, lambda b: f.label(b, "金额（大写）", "Amount in Words")),
                                  (0.50, lambda b: f.value(b, "人民币" + content.words)),
                                  (0.13, lambda b: f.label(b, "金额（小写）", "Amount")),
                                  (0.23, lambda b: f.value(b, content.figure))))
    y = f.row(left, y, width, h, ((0.14, lambda b: f.label(b, "摘要", "Summary")),
                                  (0.36, lambda b: f.value(b, content.summary)),
                                  (0.14, lambda b: f.label(b, "用途", "Purpose")),
                                  (0.36, lambda b: f.value(b, content.purpose))))
    stamp = f"{content.date.isoformat()} {content.time.isoformat()}"
    y = f.row(left, y, width, h, ((0.14, lambda b: f.label(b, "交易流水号", "Serial No.")),
                                  (0.36, lambda b: f.value(b, content.trace)),
                                  (0.14, lambda b: f.label(b, "交易时间", "Time")),
                                  (0.36, lambda b: f.value(b, stamp))))
    y = f.row(left, y, width, h, ((0.14, lambda b: f.label(b, "附言", "Remarks")),
                                  (0.86, lambda b: f.value(b, content.remark))))
    y += s.px(34)
    c.text(s.px(70), y, f"验证码：{content.verify_code}", size=s.px(21), fill=s.form_ink)
    c.text(c.width * 0.40, y, f"网点号：{content.branch_code}", size=s.px(21), fill=s.form_ink)
    c.text(c.width - s.px(70), y, "打印次数：1", size=s.px(21), fill=s.form_ink, anchor="rm")
    y += s.px(36)
    c.text(s.px(70), y, "本回单仅作为收付款凭证，重复打印无效，请注意核对。", size=s.px(19), fill=(90, 90, 90))
    features = ["bilingual"] if s.bilingual else []
    if rng.random() < 0.7:
        _seal(f, c.width * float(rng.uniform(0.70, 0.84)), y - s.px(150), "电子回单专用章")
        features.append("seal")
    return Rendered(c, _key_fields(content), tuple(features))


def transfer_voucher(canvas: Canvas, content: SlipContent, style: Style, rng: np.random.Generator) -> Rendered:
    f = _Form(canvas, style, rng)
    f.content = content
    s, c = style, canvas
    debit = rng.random() < 0.5
    y = f.header("转账凭证", "Transfer Voucher", s.px(36))
    c.text(c.width / 2, y + s.px(12), "（借方凭证）" if debit else "（贷方凭证）", size=s.px(24), fill=s.form_ink,
           anchor="mm")
    c.text(c.width - s.px(70), y - s.px(40), f"No. {content.reference[-8:]}", role="mono", size=s.px(24),
           fill=(170, 30, 40), anchor="rm")
    y += s.px(46)
    f.value((s.px(60), y - s.px(20), c.width / 2, y + s.px(20)), format_date(content.date, s.date_style), size=24)
    c.text(c.width - s.px(70), y, f"交易代码：{content.branch_code}", size=s.px(22), fill=s.form_ink, anchor="rm")
    y += s.px(28)
    left, width = s.px(60), c.width - s.px(120)
    h = s.px(64 if s.bilingual else 54)
    payer_acc, payee_acc = _accounts(content)
    half = width / 2
    for side, (who, en, party, acc) in enumerate((("付款人", "Payer", content.payer, payer_acc),
                                                   ("收款人", "Payee", content.payee, payee_acc))):
        x0 = left + side * half
        side_box = (x0, y, x0 + half * 0.12, y + 3 * h)
        f.cell_box(side_box)
        f.label(side_box, who, en, align="center")
        rows = (("全称", "Full Name", party.name), ("账号", "A/C No.", acc), ("开户银行", "Bank", party.branch))
        for i, (zh, en2, val) in enumerate(rows):
            f.row(x0 + half * 0.12, y + i * h, half * 0.88, h,
                  ((0.25, f.labeller(zh, en2)), (0.75, f.valuer(val))))
    y += 3 * h
    y = f.row(left, y, width, h * 1.2, ((0.16, lambda b: f.label(b, "人民币（大写）", "RMB in Words")),
                                        (0.56, lambda b: f.value(b, content.words, size=28)),
                                        (0.28, lambda b: f.value(b, content.figure, size=28, align="right"))))
    y = f.row(left, y, width, h, ((0.16, lambda b: f.label(b, "用途", "Purpose")),
                                  (0.34, lambda b: f.value(b, content.purpose)),
                                  (0.16, lambda b: f.label(b, "备注", "Remarks")),
                                  (0.34, lambda b: f.value(b, content.remark))))
    y += s.px(36)
    for i, role in enumerate(("会计主管", "授权", "复核", "记账", "经办")):
        c.text(s.px(70) + i * (width / 5), y, f"{role}：", size=s.px(22), fill=s.form_ink)
    f.value((s.px(70) + 4 * width / 5 + s.px(70), y - s.px(20), c.width, y + s.px(20)), content.teller, size=22)
    features = ["bilingual"] if s.bilingual else []
    if rng.random() < 0.5:
        _seal(f, c.width * float(rng.uniform(0.55, 0.8)), y - s.px(120), "转讫")
        features.append("seal")
    return Rendered(c, _key_fields(content), tuple(features))


def _cash_slip(canvas: Canvas, content: SlipContent, style: Style, rng: np.random.Generator,
               deposit: bool) -> Rendered:
    f = _Form(canvas, style, rng)
    f.content = content
    s, c = style, canvas
    verb, verb_en = ("存款", "Deposit") if deposit else ("取款", "Withdrawal")
    party = content.payee if deposit else content.payer
    y = f.header(f"{verb}凭条", f"{verb_en} Slip", s.px(36))
    y += s.px(22)
    c.text(s.px(70), y, "日期 Date：" if s.bilingual else "日期：", size=s.px(22), fill=s.form_ink)
    f.value((s.px(70) + s.px(150 if s.bilingual else 80), y - s.px(20), c.width / 2, y + s.px(20)),
            format_date(content.date, s.date_style), size=24)
    c.text(c.width - s.px(70), y, f"No. {content.reference}", role="mono", size=s.px(22), fill=(170, 30, 40),
           anchor="rm")
    y += s.px(28)
    left, width = s.px(60), c.width - s.px(120)
    h = s.px(64 if s.bilingual else 54)
    acc = format_account(party.account, content.group_accounts)
    y = f.row(left, y, width, h, ((0.13, lambda b: f.label(b, "户名", "Name")),
                                  (0.32, lambda b: f.value(b, party.name)),
                                  (0.13, lambda b: f.label(b, "账号/卡号", "A/C or Card No.")),
                                  (0.42, lambda b: f.value(b, acc, role="mono"))))
    y = f.row(left, y, width, h, ((0.13, lambda b: f.label(b, f"{verb}金额（大写）", "Amount in Words")),
                                  (0.87, lambda b: f.value(b, "人民币" + content.words))))
    cash = choose(rng, ("现钞", "现汇"))
    y = f.row(left, y, width, h, ((0.13, lambda b: f.label(b, f"{verb}金额（小写）", "Amount")),
                                  (0.32, lambda b: f.value(b, content.figure)),
                                  (0.13, lambda b: f.label(b, "币种", "Currency")),
                                  (0.15, lambda b: f.value(b, "人民币")),
                                  (0.12, lambda b: f.label(b, "钞汇", "Cash/Transfer")),
                                  (0.15, lambda b: f.value(b, cash))))
    who = "存款人" if deposit else "取款人"
    y = f.row(left, y, width, h, ((0.13, lambda b: f.label(b, f"{who}证件类型", "ID Type")),
                                  (0.20, lambda b: f.value(b, "居民身份证")),
                                  (0.12, lambda b: f.label(b, "证件号码", "ID No.")),
                                  (0.30, lambda b: f.value(b, content.id_number, role="mono")),
                                  (0.10, lambda b: f.label(b, "联系电话", "Tel")),
                                  (0.15, lambda b: f.value(b, content.phone))))
    y += s.px(34)
    c.text(s.px(70), y, "以下由银行打印 For Bank Use" if s.bilingual else "以下由银行打印", size=s.px(20),
           fill=s.form_ink)
    y += s.px(40)
    machine = (f"交易码:{'1001' if deposit else '2001'} 网点号:{content.branch_code} 柜员:{content.teller} "
               f"{content.date.isoformat()} {content.time.isoformat()}")
    f.value((s.px(70), y - s.px(20), c.width - s.px(70), y + s.px(20)), machine, size=24, role="mono")
    y += s.px(40)
    f.value((s.px(70), y - s.px(20), c.width - s.px(70), y + s.px(20)),
            f"流水号:{content.trace} 余额:******", size=24, role="mono")
    c.text(c.width - s.px(420), y, "客户签名：", size=s.px(22), fill=s.form_ink)
    features = ["bilingual"] if s.bilingual else []
    if rng.random() < 0.5:
        _seal(f, c.width * float(rng.uniform(0.7, 0.85)), y - s.px(70), "现金讫" if deposit else "付讫")
        features.append("seal")
    fields = _key_fields(content, payer=not deposit, payee=deposit)
    return Rendered(c, fields, tuple(features))


def deposit_slip(canvas: Canvas, content: SlipContent, style: Style, rng: np.random.Generator) -> Rendered:
    return _cash_slip(canvas, content, style, rng, deposit=True)


def withdrawal_slip(canvas: Canvas, content: SlipContent, style: Style, rng: np.random.Generator) -> Rendered:
    return _cash_slip(canvas, content, style, rng, deposit=False)


def remittance_application(canvas: Canvas, content: SlipContent, style: Style,
                           rng: np.random.Generator) -> Rendered:
    f = _Form(canvas, style, rng)
    f.content = content
    s, c = style, canvas
    y = f.header("汇款申请书", "Remittance Application", s.px(36))
    y += s.px(22)
    c.text(s.px(70), y, "申请日期：", size=s.px(22), fill=s.form_ink)
    f.value((s.px(180), y - s.px(20), c.width / 2, y + s.px(20)), format_date(content.date, s.date_style), size=24)
    urgent = rng.random() < 0.5
    x = c.width - s.px(380)
    c.checkbox(x, y, s.px(24), ticked=not urgent, fill=s.form_ink)
    c.text(x + s.px(34), y, "普通", size=s.px(22), fill=s.form_ink)
    c.checkbox(x + s.px(120), y, s.px(24), ticked=urgent, fill=s.form_ink)
    c.text(x + s.px(154), y, "加急", size=s.px(22), fill=s.form_ink)
    c.text(c.width - s.px(70), y + s.px(36), f"编号：{content.reference}", size=s.px(20), fill=s.form_ink,
           anchor="rm")
    y += s.px(56)
    left, width = s.px(60), c.width - s.px(120)
    h = s.px(64 if s.bilingual else 54)
    payer_acc, payee_acc = _accounts(content)
    for who, en, party, acc in (("汇款人", "Remitter", content.payer, payer_acc),
                                ("收款人", "Beneficiary", content.payee, payee_acc)):
        side_box = (left, y, left + width * 0.08, y + 3 * h)
        f.cell_box(side_box)
        f.label(side_box, who, en, align="center")
        x0, w0 = left + width * 0.08, width * 0.92
        place = f"{party.province}省 {party.city}市" if party.province != party.city else f"{party.city}市"
        f.row(x0, y, w0, h, ((0.14, lambda b: f.label(b, "全称", "Name")),
                             (0.86, f.valuer(party.name))))
        f.row(x0, y + h, w0, h, ((0.14, lambda b: f.label(b, "账号", "A/C No.")),
                                 (0.86, f.valuer(acc))))
        f.row(x0, y + 2 * h, w0, h, ((0.14, lambda b: f.label(b, "开户行", "Bank")),
                                     (0.46, f.valuer(party.branch)),
                                     (0.12, lambda b: f.label(b, "所在地", "Place")),
                                     (0.28, f.valuer(place))))
        y += 3 * h
    y = f.row(left, y, width, h * 1.2, ((0.16, lambda b: f.label(b, "汇款金额（大写）", "Amount in Words")),
                                        (0.56, lambda b: f.value(b, "人民币" + content.words, size=28)),
                                        (0.28, lambda b: f.value(b, content.figure, size=28, align="right"))))
    y = f.row(left, y, width, h, ((0.16, lambda b: f.label(b, "附言", "Message")),
                                  (0.40, lambda b: f.value(b, f"{content.purpose} {content.remark}")),
                                  (0.14, lambda b: f.label(b, "支付密码", "Pay Code")),
                                  (0.30, lambda b: f.value(b, content.trace[1:], role="mono"))))
    y += s.px(34)
    c.text(s.px(70), y, "汇款人签章：", size=s.px(22), fill=s.form_ink)
    c.text(c.width * 0.55, y, f"经办：{content.teller}", size=s.px(22), fill=s.form_ink)
    features = ["bilingual"] if s.bilingual else []
    if rng.random() < 0.6:
        _seal(f, c.width * float(rng.uniform(0.2, 0.4)), y - s.px(60), "财务专用章")
        features.append("seal")
    return Rendered(c, _key_fields(content), tuple(features))


_RENDERERS: dict[str, Callable[[Canvas, SlipContent, Style, np.random.Generator], Rendered]] = {
    "e_receipt": e_receipt,
    "transfer_voucher": transfer_voucher,
    "deposit_slip": deposit_slip,
    "withdrawal_slip": withdrawal_slip,
    "remittance_application": remittance_application,
}


def render(template: str, content: SlipContent, fonts: FontSet, rng: np.random.Generator) -> Rendered:
    width = int(rng.integers(1400, 2000))
    style = _style(rng, width, form_colour=template != "e_receipt")
    # Draw on a tall sheet, then cut it below the last line, as a slip is torn off a form pad.
    canvas = Canvas(width, int(width * 0.8), style.paper, fonts)
    rendered = _RENDERERS[template](canvas, content, style, rng)
    bottom = max(y for line in canvas.lines for _, y in line.quad) + style.px(float(rng.uniform(40, 80)))
    canvas.crop_height(min(canvas.height, int(bottom)))
    return rendered
