"""Money amounts as printed on Chinese bank slips: figures in several styles and the capital-numeral words.

The words follow the People's Bank of China rules for filling in payment instruments: 壹拾 is never shortened
to 拾, a run of zeros inside the integer part is written as one 零, 整 closes an amount that ends at 元 or 角,
and 零 stands after 元 when 角 is zero but 分 is not. Where the rules allow either form (a zero ones-place of
the yuan before a non-zero 角, as in 1680.32) we write the shorter one: 壹仟陆佰捌拾元叁角贰分.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_PLACES = ("", "拾", "佰", "仟")
# Group units for 10^0, 10^4, 10^8, 10^12.
_GROUPS = ("", "万", "亿", "万亿")
MAX_AMOUNT = Decimal("9999999999999999.99")


def to_fen(amount: Decimal | str | int) -> int:
    """Amount in yuan (a Decimal, an int, or a plain decimal string) -> integer fen; exact, no floats."""
    try:
        value = Decimal(str(amount).replace(",", "").strip())
    except InvalidOperation as e:
        raise ValueError(f"not an amount: {amount!r}") from e
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise ValueError(f"amount out of range: {amount!r}")
    if value != value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN):
        raise ValueError(f"amount has more than two decimals: {amount!r}")
    return int(value * 100)


def normalised(amount: Decimal | str | int) -> str:
    """The canonical ground-truth form: no grouping, no currency, always two decimals ("12345.67")."""
    fen = to_fen(amount)
    return f"{fen // 100}.{fen % 100:02d}"


def _group_words(group: int) -> str:
    """One group of up to four digits; leading zeros are the caller's business."""
    out: list[str] = []
    pending_zero = False
    for place in (3, 2, 1, 0):
        digit = group // 10**place % 10
        if digit == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_DIGITS[digit] + _PLACES[place])
    return "".join(out)


def _integer_words(yuan: int) -> str:
    groups: list[int] = []
    while yuan:
        groups.append(yuan % 10000)
        yuan //= 10000
    out: list[str] = []
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        # 壹万零伍 (10005) and 壹亿零壹拾万 (100100000): a gap before a group is read as one 零.
        if out and (pending_zero or group < 1000):
            out.append("零")
        out.append(_group_words(group) + _GROUPS[index])
        pending_zero = False
    return "".join(out)


def amount_in_words(amount: Decimal | str | int) -> str:
    """壹万贰仟叁佰肆拾伍元陆角柒分 for 12345.67; 伍分 for 0.05; 零元整 for 0."""
    fen = to_fen(amount)
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    if yuan == 0:
        if jiao == 0 and cents == 0:
            return "零元整"
        head = ""
    else:
        head = _integer_words(yuan) + "元"
    if jiao == 0 and cents == 0:
        return head + "整"
    if jiao == 0:
        return head + ("零" if head else "") + _DIGITS[cents] + "分"
    if cents == 0:
        return head + _DIGITS[jiao] + "角整"
    return head + _DIGITS[jiao] + "角" + _DIGITS[cents] + "分"


FIGURE_STYLES = ("yen_grouped", "rmb_plain", "fullwidth_yen_plain", "cny_grouped", "grouped")


def format_figure(amount: Decimal | str | int, style: str) -> str:
    """The amount as printed in figures: ¥12,345.67, RMB 12345.67, ￥12345.67, CNY 12,345.67, 12,345.67."""
    fen = to_fen(amount)
    plain = f"{fen // 100}.{fen % 100:02d}"
    grouped = f"{fen // 100:,}.{fen % 100:02d}"
    match style:
        case "yen_grouped":
            return "¥" + grouped
        case "rmb_plain":
            return "RMB " + plain
        case "fullwidth_yen_plain":
            return "￥" + plain
        case "cny_grouped":
            return "CNY " + grouped
        case "grouped":
            return grouped
    raise ValueError(f"unknown figure style {style!r}")
