"""Money is integer minor units plus an ISO 4217 currency code. Never a float.

One rounding rule: half-up per line, where half-up means half away from zero (2.5 -> 3, -2.5 -> -3), the usual
commercial rule, so a credit note line is the exact mirror of the invoice line it corrects. Totals are sums of
rounded lines and are never rounded themselves. Line arithmetic runs on exact fractions, so no decimal context
precision can round anything before the one rounding step.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency, get_currency_symbol
from pydantic import AfterValidator, ConfigDict, Field, GetCoreSchemaHandler, field_validator
from pydantic_core import core_schema

from favmcp.core.errors import ErrorCode, FavError, FieldError, validation_failed
from favmcp.core.schema import Schema

# ISO 4217 list one: the active codes and their minor units (digits after the decimal point).
MINOR_UNITS: Mapping[str, int] = MappingProxyType(
    {
        "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2, "AZN": 2,
        "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2, "BOB": 2, "BRL": 2,
        "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHF": 2, "CLP": 0, "CNY": 2,
        "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2,
        "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
        "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
        "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0,
        "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2,
        "LYD": 3, "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
        "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2, "NPR": 2,
        "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2,
        "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2,
        "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2,
        "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2,
        "UYU": 2, "UZS": 2, "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0,
        "YER": 2, "ZAR": 2, "ZMW": 2, "ZWL": 2,
    }
)  # fmt: skip
CURRENCIES = frozenset(MINOR_UNITS)

# The largest integer a JSON number carries exactly in every client (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_AMOUNT = 2**53 - 1

# A plain decimal: digits, optionally a point and more digits. No sign other than a leading minus, no exponent, no
# grouping: "1.000" is one, never a thousand, and is refused for JPY rather than guessed at.
_DECIMAL = re.compile(r"(?P<minus>-?)(?P<whole>[0-9]{1,18})(?:\.(?P<fraction>[0-9]+))?")
PERCENT_PLACES = 4
_PERCENT = r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$"  # 0 to 100, up to PERCENT_PLACES decimals
_PERCENT_TEXT = 'Percent as a string, e.g. "21" or "8.875".'


def minor_units(currency: str) -> int:
    """Digits after the decimal point of an ISO 4217 currency: JPY 0, EUR 2, KWD 3."""
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise validation_failed(
            f"{currency!r} is not an active ISO 4217 currency code.",
            [FieldError(field="currency", message="an ISO 4217 code, e.g. EUR")],
        ) from None


class CurrencyMismatchError(FavError):
    """Two amounts in different currencies met in one calculation.

    validation_failed, not conflict or invalid_state: the caller passed an amount that does not fit (a USD payment
    against a EUR invoice); nothing about the record's state or a concurrent writer, and the same call with an amount
    in the right currency succeeds.
    """

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(
            ErrorCode.validation_failed,
            f"An amount in {got} cannot be combined with amounts in {expected}; give it in {expected}.",
            field_errors=[FieldError(field="currency", message=f"expected {expected}, got {got}")],
            details={"expected_currency": expected, "currency": got},
        )


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in the smallest unit of its currency: Money(1250, "EUR") is 12.50 EUR, Money(1200, "JPY") 1,200 JPY."""

    minor: int
    currency: str

    def __post_init__(self) -> None:
        # bool is an int subclass and a float would carry its binary error into a ledger: only a real int will do.
        if type(self.minor) is not int:
            raise validation_failed(
                f"Money takes a whole number of minor units, not {type(self.minor).__name__}.",
                [FieldError(field="amount", message="an integer in minor units, e.g. 1250 for 12.50 EUR")],
            )
        minor_units(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """An exact amount from a decimal string in major units: "12.50" EUR is 1250, "1200" JPY is 1200.

        More decimals than the currency has are refused, trailing zeros included ("1.000" JPY is not guessed to be
        1 or 1000), and so is anything that is not a plain decimal string: a float, a sign other than a leading
        minus, an exponent, grouping separators.
        """
        places = minor_units(currency)
        match = _DECIMAL.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise validation_failed(
                f"{text!r} is not a decimal amount.",
                [FieldError(field="amount", message='a decimal string with a point, e.g. "12.50"')],
            )
        fraction = match["fraction"] or ""
        if len(fraction) > places:
            raise validation_failed(
                f"{currency} has {places} decimal places; {text!r} has {len(fraction)}.",
                [FieldError(field="amount", message=f"at most {places} decimal places in {currency}")],
            )
        # The digits of the decimal string are the minor units once the fraction is padded to the currency's places.
        minor = int(match["whole"] + fraction.ljust(places, "0"))
        return cls(-minor if match["minus"] else minor, currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exactly: Money(1250, "EUR") is Decimal("12.50")."""
        return Decimal(f"{self.minor}e-{minor_units(self.currency)}")

    def __str__(self) -> str:
        """Locale-free text for messages and logs, e.g. "12.50 EUR"; people get format_money."""
        return f"{self.to_decimal()} {self.currency}"

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise CurrencyMismatchError(self.currency, other.currency)

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._same(other)
        return Money(self.minor - other.minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor


def total(amounts: Iterable[Money], currency: str) -> Money:
    """The sum of amounts in one currency; the currency is named so that an empty sum is still money."""
    result = Money.zero(currency)
    for amount in amounts:
        result += amount
    return result


def round_half_up(value: Fraction | Decimal | int) -> int:
    """To a whole number of minor units, half away from zero: 2.5 -> 3, -2.5 -> -3, 2.49 -> 2, -2.49 -> -2."""
    if not isinstance(value, Fraction | Decimal | int) or isinstance(value, bool):
        raise TypeError(f"round_half_up takes an exact number, not {type(value).__name__}")
    exact = Fraction(value)
    whole, rest = divmod(abs(exact.numerator), exact.denominator)
    if 2 * rest >= exact.denominator:
        whole += 1
    return whole if exact >= 0 else -whole


@dataclass(frozen=True, slots=True)
class Percent:
    """An exact percentage: Percent(Decimal("21")) is 21 %, used for tax rates and percentage discounts.

    A decimal with up to four places rather than basis points: basis points cannot hold the 8.875 % sales tax of New
    York City, and a decimal string is what a person or a model writes. In tool schemas it is that string, never a
    JSON number, so no float ever carries a rate.
    """

    value: Decimal

    def __post_init__(self) -> None:
        if not isinstance(self.value, Decimal) or not self.value.is_finite():
            raise validation_failed(
                f"A percentage is an exact decimal, not {self.value!r}.",
                [FieldError(field="rate", message='a decimal string, e.g. "21" or "8.875"')],
            )
        exponent = self.value.as_tuple().exponent
        if not 0 <= self.value <= 100 or (isinstance(exponent, int) and exponent < -PERCENT_PLACES):
            raise validation_failed(
                f"A percentage is between 0 and 100 with at most {PERCENT_PLACES} decimal places, not {self.value}.",
                [FieldError(field="rate", message=f"0 to 100, at most {PERCENT_PLACES} decimal places")],
            )

    @classmethod
    def parse(cls, text: str) -> Percent:
        if not isinstance(text, str) or re.fullmatch(_PERCENT, text) is None:
            raise validation_failed(
                f"{text!r} is not a percentage.",
                [FieldError(field="rate", message='a decimal string, e.g. "21" or "8.875"')],
            )
        return cls(Decimal(text))

    @property
    def fraction(self) -> Fraction:
        """The share it stands for: 21 % is 21/100."""
        return Fraction(self.value) / 100

    def __str__(self) -> str:
        # normalize() drops trailing zeros ("21.00" -> "21"); the f format keeps "100" from becoming "1E+2".
        return f"{self.value.normalize():f}"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """In a pydantic model: a decimal string in JSON ("21", "8.875"), a Percent in Python, a string on output."""
        # The pattern admits exactly what parse accepts, so a refusal is pydantic's own field error.
        from_text = core_schema.no_info_after_validator_function(
            cls.parse,
            core_schema.str_schema(pattern=_PERCENT, strict=True),
            metadata={"pydantic_js_updates": {"description": _PERCENT_TEXT}},
        )
        return core_schema.json_or_python_schema(
            json_schema=from_text,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_text]),
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


@dataclass(frozen=True, slots=True)
class Line:
    """One priced line: quantity x unit amount, an optional discount, a tax rate.

    The unit amount is tax-exclusive unless the workspace says its prices include tax (see price_line). A negative
    unit amount prices a credit; a discount always moves the line toward zero.
    """

    quantity: int | Decimal
    unit_amount: Money
    tax_rate: Percent
    discount: Money | Percent | None = None

    def __post_init__(self) -> None:
        quantity = self.quantity
        exact = type(quantity) is int or (isinstance(quantity, Decimal) and quantity.is_finite())
        if not exact or quantity <= 0:
            raise validation_failed(
                f"A line's quantity is a positive exact number, not {self.quantity!r}.",
                [FieldError(field="quantity", message="greater than 0, e.g. 1 or 1.5")],
            )
        if isinstance(self.discount, Money):
            self.unit_amount._same(self.discount)
            if self.discount.minor < 0:
                raise validation_failed(
                    "A discount is not negative.", [FieldError(field="discount", message="0 or more")]
                )


@dataclass(frozen=True, slots=True)
class LineAmounts:
    """What a line comes to, each amount rounded once, half-up: net + tax == gross, always."""

    before_discount: Money  # quantity x unit amount, in the terms the prices are in (gross if they include tax)
    discount: Money
    net: Money
    tax: Money
    gross: Money
    tax_rate: Percent


def price_line(line: Line, *, prices_include_tax: bool) -> LineAmounts:
    """Price one line. Tax-exclusive prices: net is the discounted amount and tax = net x rate. Prices that include
    tax: gross is the discounted amount, tax is extracted from it (gross x rate / (100 % + rate)) and net = gross -
    tax. Each step rounds half-up to minor units, so the figures printed on the line are the ones that add up."""
    currency = line.unit_amount.currency
    before = round_half_up(Fraction(line.quantity) * line.unit_amount.minor)
    match line.discount:
        case Percent() as share:
            off = round_half_up(before * share.fraction)
        case Money(minor=off_minor):
            if off_minor > abs(before):
                raise validation_failed(
                    f"The discount of {line.discount} is more than the line's {Money(abs(before), currency)}.",
                    [FieldError(field="discount", message="at most the line amount")],
                )
            off = off_minor if before >= 0 else -off_minor
        case _:
            off = 0
    priced = before - off
    rate = line.tax_rate.fraction
    if prices_include_tax:
        gross = priced
        tax = round_half_up(gross * rate / (1 + rate))
        net = gross - tax
    else:
        net = priced
        tax = round_half_up(net * rate)
        gross = net + tax
    return LineAmounts(
        before_discount=Money(before, currency),
        discount=Money(off, currency),
        net=Money(net, currency),
        tax=Money(tax, currency),
        gross=Money(gross, currency),
        tax_rate=line.tax_rate,
    )


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split `amount` (a document discount) over lines in proportion to `weights` (their amounts before it), by
    largest remainder, earlier lines first on ties: whole minor units that add up to `amount` exactly, none more
    than its weight while amount <= sum(weights)."""
    whole = sum(weights)
    if amount <= 0 or whole <= 0:
        return [0] * len(weights)
    shares = [divmod(amount * weight, whole) for weight in weights]
    out = [quotient for quotient, _ in shares]
    for i in sorted(range(len(weights)), key=lambda i: (-shares[i][1], i))[: amount - sum(out)]:
        out[i] += 1
    return out


@dataclass(frozen=True, slots=True)
class TaxGroup:
    """The lines taxed at one rate: their net and their tax, each a sum of the rounded line amounts."""

    rate: Percent
    net: Money
    tax: Money


@dataclass(frozen=True, slots=True)
class Totals:
    """A document's totals, each a sum of rounded line amounts: subtotal + tax == total; the groups add up to tax."""

    discount: Money
    subtotal: Money  # the lines' net amounts: after discounts, before tax
    tax: Money
    total: Money
    tax_by_rate: tuple[TaxGroup, ...]  # ordered by rate


def totals(lines: Iterable[LineAmounts], currency: str) -> Totals:
    """Sum priced lines. Nothing is rounded here: rounding happened once per line in price_line."""
    lines = list(lines)
    for line in lines:
        if line.gross.currency != currency:
            raise CurrencyMismatchError(currency, line.gross.currency)
    groups: dict[Percent, list[LineAmounts]] = {}
    for line in lines:
        groups.setdefault(line.tax_rate, []).append(line)
    return Totals(
        discount=total((line.discount for line in lines), currency),
        subtotal=total((line.net for line in lines), currency),
        tax=total((line.tax for line in lines), currency),
        total=total((line.gross for line in lines), currency),
        tax_by_rate=tuple(
            TaxGroup(
                rate=rate,
                net=total((line.net for line in group), currency),
                tax=total((line.tax for line in group), currency),
            )
            for rate, group in sorted(groups.items(), key=lambda item: item[0].value)
        ),
    )


@lru_cache(maxsize=64)
def _locale(tag: str) -> Locale:
    """The workspace's locale (a tag like nl-NL), else its language, else English: text is always rendered."""
    for candidate in (tag, tag.split("-")[0]):
        try:
            return Locale.parse(candidate, sep="-")
        except (UnknownLocaleError, ValueError):
            continue
    return Locale("en")


def format_money(money: Money, locale: str) -> str:
    """An amount for people, in the locale's way: "€12.50" (en), "€ 12,50" (nl), "12,50 €" (de), "¥1,200",
    "KWD 1.250". Always with the currency's ISO 4217 decimal places: CLDR's display digits differ for some
    currencies (IQD, LBP ...) and an amount is never shown rounded."""
    where = _locale(locale)
    pattern = copy.copy(where.currency_formats["standard"])
    places = minor_units(money.currency)
    pattern.frac_prec = (places, places)
    text = format_currency(money.to_decimal(), money.currency, format=pattern, locale=where, currency_digits=False)
    return _space_symbol(text, get_currency_symbol(money.currency, where))


def _space_symbol(text: str, symbol: str) -> str:
    """CLDR's currency spacing, which Babel leaves out: a symbol that ends in a letter where it meets a digit gets a
    no-break space ("KWD 1.250", not "KWD1.250"); "€12.50" and "12,50 €" stay as they are."""
    at = text.find(symbol)
    if at < 0 or not symbol:
        return text
    end = at + len(symbol)
    if end < len(text) and text[end].isdigit() and symbol[-1].isalpha():
        return f"{text[:end]}\xa0{text[end:]}"
    if at > 0 and text[at - 1].isdigit() and symbol[0].isalpha():
        return f"{text[:at]}\xa0{text[at:]}"
    return text


class MoneyAmount(Schema):
    """An amount in tool inputs and outputs: an integer in minor units beside its ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: int = Field(
        strict=True,
        ge=-MAX_AMOUNT,
        le=MAX_AMOUNT,
        description="In minor units of the currency: 1250 is 12.50 EUR, 1200 is 1,200 JPY.",
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")

    @field_validator("currency")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError("not an active ISO 4217 currency code, e.g. EUR")
        return value

    @classmethod
    def of(cls, money: Money) -> MoneyAmount:
        return cls(amount=money.minor, currency=money.currency)

    def to_money(self) -> Money:
        return Money(self.amount, self.currency)


# Amounts in tool arguments: whole minor units, beside the document's currency (Stripe's shape). Floats and numeric
# strings are refused (strict), so 12.5 never becomes 12 or 1250 by guesswork.
Amount = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT, description="Minor units: 1250 is 12.50 EUR.")]
PositiveAmount = Annotated[int, Field(strict=True, ge=1, le=MAX_AMOUNT, description="Minor units: 1250 is 12.50 EUR.")]


def _currency_code(value: str) -> str:
    if value.upper() not in CURRENCIES:
        raise ValueError("not an ISO 4217 currency code, e.g. EUR")
    return value.upper()


CurrencyCode = Annotated[str, Field(description="ISO 4217 code, e.g. EUR"), AfterValidator(_currency_code)]


@dataclass(frozen=True, slots=True)
class Receivable:
    """What is still owed on a document a payment can settle (an invoice or an order), read under a row lock."""

    kind: str  # "invoice" | "order"
    id: str
    member_id: str
    currency: str
    total: int  # minor units
    amount_paid: int
    amount_remaining: int
