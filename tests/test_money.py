"""The money type: exact amounts per ISO 4217, one rounding rule (half away from zero, once per line), tax-exclusive
and tax-inclusive lines, totals that are sums of rounded lines, and text for people. Pure: no database."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from favmcp.core.errors import ErrorCode, FavError
from favmcp.core.money import (
    CURRENCIES,
    MAX_AMOUNT,
    MINOR_UNITS,
    CurrencyMismatchError,
    Line,
    LineAmounts,
    Money,
    MoneyAmount,
    Percent,
    allocate,
    format_money,
    minor_units,
    price_line,
    round_half_up,
    total,
    totals,
)

EXAMPLES = settings(max_examples=200, deadline=None)


def refused(action: Callable[[], Any]) -> FavError:
    with pytest.raises(FavError) as caught:
        action()
    assert caught.value.code is ErrorCode.validation_failed
    return caught.value


def rate(text: str) -> Percent:
    return Percent.parse(text)


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


# Exponents


def test_exponents_follow_iso_4217() -> None:
    assert (minor_units("JPY"), minor_units("EUR"), minor_units("USD"), minor_units("KWD")) == (0, 2, 2, 3)
    # ISO 4217 list one: every active code has two decimals except these.
    assert {c for c, places in MINOR_UNITS.items() if places == 0} == {
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    }  # fmt: skip
    assert {c for c, places in MINOR_UNITS.items() if places == 3} == {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"}
    assert set(MINOR_UNITS.values()) == {0, 2, 3}
    assert frozenset(MINOR_UNITS) == CURRENCIES


@pytest.mark.parametrize("code", ["XXX", "eur", "EURO", "", "ZZZ"])
def test_an_unknown_currency_is_refused(code: str) -> None:
    error = refused(lambda: Money(100, code))
    assert error.body.field_errors[0].field == "currency"
    refused(lambda: minor_units(code))
    refused(lambda: Money.parse("1", code))


# Construction and parsing


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "EUR", 1250),
        ("12.5", "EUR", 1250),
        ("12", "EUR", 1200),
        ("0.01", "EUR", 1),
        ("-3.10", "EUR", -310),
        ("-0.05", "EUR", -5),
        ("1200", "JPY", 1200),
        ("1.250", "KWD", 1250),
        ("0.001", "KWD", 1),
        ("0.1", "KWD", 100),
        ("007.10", "USD", 710),
        # Beyond the 28 digits of the default decimal context, still exact.
        ("123456789012345678.99", "EUR", 12345678901234567899),
    ],
)
def test_decimal_strings_parse_exactly(text: str, currency: str, minor: int) -> None:
    assert Money.parse(text, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.505", "EUR"),
        ("12.500", "EUR"),  # trailing zeros count: "1.250" could be a German 1,250
        ("12.50", "JPY"),
        ("1.000", "JPY"),  # one yen or a thousand? refused, not guessed
        ("1.2345", "KWD"),
        ("0.0001", "KWD"),
    ],
)
def test_more_decimals_than_the_currency_has_are_refused(text: str, currency: str) -> None:
    error = refused(lambda: Money.parse(text, currency))
    assert f"{minor_units(currency)} decimal places" in error.body.message


@pytest.mark.parametrize(
    "text", ["1e3", "+1", "1,000.00", "1 000", " 12", "12.", ".5", "NaN", "Infinity", "1_000", "٣", "--1", "", "€12"]
)
def test_anything_but_a_plain_decimal_string_is_refused(text: str) -> None:
    refused(lambda: Money.parse(text, "EUR"))


@pytest.mark.parametrize("value", [12.5, 12.0, Decimal("12.50"), 1250])
def test_parse_takes_only_text(value: Any) -> None:
    refused(lambda: Money.parse(value, "EUR"))


@pytest.mark.parametrize("value", [12.5, 1250.0, True, Decimal("1250"), "1250", None])
def test_money_is_built_from_an_int_only(value: Any) -> None:
    error = refused(lambda: Money(value, "EUR"))
    assert error.body.field_errors[0].field == "amount"


@given(minor=st.integers(-(10**18) + 1, 10**18 - 1), currency=st.sampled_from(sorted(CURRENCIES)))
@EXAMPLES
def test_the_decimal_text_of_an_amount_parses_back_to_it(minor: int, currency: str) -> None:
    money = Money(minor, currency)
    text = str(money.to_decimal())
    assert Money.parse(text, currency) == money
    assert str(money) == f"{text} {currency}"
    # The decimal text always shows exactly the currency's places.
    assert len(text.partition(".")[2]) == minor_units(currency)


def test_to_decimal_is_exact() -> None:
    assert Money(1250, "EUR").to_decimal() == Decimal("12.50")
    assert str(Money(1200, "JPY").to_decimal()) == "1200"
    assert str(Money(1250, "KWD").to_decimal()) == "1.250"
    assert str(Money(-5, "EUR")) == "-0.05 EUR"
    assert Money(10**40 + 1, "EUR").to_decimal() == Decimal("100000000000000000000000000000000000000.01")


def test_money_is_immutable() -> None:
    money = eur(100)
    with pytest.raises(AttributeError):
        money.minor = 200  # type: ignore[misc]


# Arithmetic


def test_arithmetic_in_one_currency() -> None:
    assert eur(1250) + eur(75) == eur(1325)
    assert eur(1250) - eur(1300) == eur(-50)
    assert -eur(1250) == eur(-1250)
    assert eur(1) < eur(2) <= eur(2) and eur(3) > eur(2) >= eur(2)
    assert total([eur(1), eur(2), eur(3)], "EUR") == eur(6)
    assert total([], "JPY") == Money(0, "JPY")


@pytest.mark.parametrize(
    "combine",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: total([a, b], "EUR"),
    ],
)
def test_mixed_currencies_are_refused_with_a_typed_error(combine: Callable[[Money, Money], Any]) -> None:
    with pytest.raises(CurrencyMismatchError) as caught:
        combine(eur(100), Money(100, "USD"))
    assert caught.value.code is ErrorCode.validation_failed
    assert caught.value.body.details == {"expected_currency": "EUR", "currency": "USD"}
    assert caught.value.body.field_errors[0].field == "currency"


def test_money_does_not_mix_with_bare_numbers() -> None:
    with pytest.raises(TypeError):
        eur(100) + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        eur(100) - Decimal("0.5")  # type: ignore[operator]
    assert eur(100) != 100


# Rounding


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("2.5"), 3),
        (Decimal("-2.5"), -3),
        (Decimal("0.5"), 1),
        (Decimal("-0.5"), -1),
        (Decimal("1.5"), 2),  # not banker's rounding, which gives 2 for both 1.5 and 2.5
        (Decimal("2.4999999999999999999999999999999"), 2),
        (Decimal("-2.4999999999999999999999999999999"), -2),
        (Decimal("2.5000000000000000000000000000001"), 3),
        (Fraction(1, 3), 0),
        (Fraction(2, 3), 1),
        (Fraction(-2, 3), -1),
        (Fraction(10**40 + 1, 2), 10**40 // 2 + 1),
        (7, 7),
        (0, 0),
    ],
)
def test_half_up_rounds_half_away_from_zero(value: Decimal | Fraction | int, expected: int) -> None:
    assert round_half_up(value) == expected


@pytest.mark.parametrize("value", [2.5, True, "2.5"])
def test_rounding_refuses_inexact_input(value: Any) -> None:
    with pytest.raises(TypeError):
        round_half_up(value)


@given(numerator=st.integers(-(10**30), 10**30), denominator=st.integers(1, 10**6))
@EXAMPLES
def test_rounding_is_nearest_and_symmetric(numerator: int, denominator: int) -> None:
    value = Fraction(numerator, denominator)
    rounded = round_half_up(value)
    assert abs(value - rounded) <= Fraction(1, 2)
    assert round_half_up(-value) == -rounded  # a credit note mirrors its invoice to the minor unit
    if abs(value - rounded) == Fraction(1, 2):
        assert abs(rounded) > abs(value)


# Percentages


@pytest.mark.parametrize(("text", "shown"), [("21", "21"), ("8.875", "8.875"), ("21.00", "21"), ("100", "100")])
def test_percentages_are_exact_decimals(text: str, shown: str) -> None:
    assert str(rate(text)) == shown
    assert rate("8.875").fraction == Fraction(8875, 100000)
    assert rate("21.00") == rate("21") and hash(rate("21.00")) == hash(rate("21"))


@pytest.mark.parametrize("text", ["101", "100.5", "-1", "1.23456", "1e1", "21%", ""])
def test_percentages_out_of_range_or_too_precise_are_refused(text: str) -> None:
    refused(lambda: rate(text))


@pytest.mark.parametrize("value", [21.0, 21, Decimal("NaN"), Decimal("-0.5"), Decimal("100.01"), Decimal("1.00001")])
def test_a_percent_is_built_from_an_exact_decimal_in_range(value: Any) -> None:
    refused(lambda: Percent(value))


# Lines


def test_a_tax_exclusive_line() -> None:
    amounts = price_line(Line(3, eur(1250), rate("21")), prices_include_tax=False)
    # 3 x 12.50 = 37.50; 21 % of it is 7.875, half-up 7.88.
    assert amounts == LineAmounts(
        before_discount=eur(3750), discount=eur(0), net=eur(3750), tax=eur(788), gross=eur(4538), tax_rate=rate("21")
    )


def test_a_tax_inclusive_line_extracts_the_tax() -> None:
    amounts = price_line(Line(1, eur(1210), rate("21")), prices_include_tax=True)
    assert (amounts.gross, amounts.tax, amounts.net) == (eur(1210), eur(210), eur(1000))
    # 9.99 at 9 % inclusive: the tax is 0.8248..., 0.82; the net is what is left.
    amounts = price_line(Line(1, eur(999), rate("9")), prices_include_tax=True)
    assert (amounts.gross, amounts.tax, amounts.net) == (eur(999), eur(82), eur(917))


@pytest.mark.parametrize(
    ("unit", "percent", "inclusive", "tax"),
    [
        (5, "10", False, 1),  # 0.5 -> 1
        (-5, "10", False, -1),  # -0.5 -> -1, not 0
        (50, "21", False, 11),  # 10.5 -> 11
        (-50, "21", False, -11),
        (3, "20", True, 1),  # 3 x 20/120 = 0.5 -> 1, net 2
        (-3, "20", True, -1),
        (5, "100", True, 3),  # 2.5 -> 3, net 2
        (4, "10", False, 0),  # 0.4 -> 0
    ],
)
def test_tax_rounds_half_up_at_the_boundary_for_invoices_and_credit_notes(
    unit: int, percent: str, inclusive: bool, tax: int
) -> None:
    amounts = price_line(Line(1, eur(unit), rate(percent)), prices_include_tax=inclusive)
    assert amounts.tax == eur(tax)
    assert amounts.net + amounts.tax == amounts.gross


def test_quantities_may_be_exact_decimals() -> None:
    # 1.5 hours at 33.33: 49.995 -> 50.00 (half-up on the line, not per unit).
    amounts = price_line(Line(Decimal("1.5"), eur(3333), rate("0")), prices_include_tax=False)
    assert amounts.before_discount == eur(5000) and amounts.tax == eur(0) and amounts.gross == eur(5000)


def test_lines_in_zero_and_three_decimal_currencies() -> None:
    yen = price_line(Line(3, Money(333, "JPY"), rate("10")), prices_include_tax=False)
    assert (yen.net, yen.tax, yen.gross) == (Money(999, "JPY"), Money(100, "JPY"), Money(1099, "JPY"))
    dinar = price_line(Line(2, Money.parse("1.250", "KWD"), rate("5")), prices_include_tax=False)
    assert (dinar.net, dinar.tax, dinar.gross) == (Money(2500, "KWD"), Money(125, "KWD"), Money(2625, "KWD"))


def test_a_percentage_discount_is_rounded_once_on_the_line() -> None:
    amounts = price_line(Line(3, eur(333), rate("21"), discount=rate("10")), prices_include_tax=False)
    # 9.99 less 10 % (0.999 -> 1.00) is 8.99; tax 1.8879 -> 1.89.
    assert (amounts.before_discount, amounts.discount, amounts.net) == (eur(999), eur(100), eur(899))
    assert (amounts.tax, amounts.gross) == (eur(189), eur(1088))


def test_a_fixed_discount_and_prices_that_include_tax() -> None:
    amounts = price_line(Line(2, eur(2500), rate("21"), discount=eur(1000)), prices_include_tax=True)
    # 50.00 less 10.00 is a gross of 40.00, of which 21/121 is tax: 6.942... -> 6.94.
    assert (amounts.discount, amounts.gross, amounts.tax, amounts.net) == (eur(1000), eur(4000), eur(694), eur(3306))


def test_a_discount_on_a_credit_moves_it_toward_zero() -> None:
    fixed = price_line(Line(1, eur(-5000), rate("0"), discount=eur(1000)), prices_include_tax=False)
    share = price_line(Line(1, eur(-5000), rate("0"), discount=rate("20")), prices_include_tax=False)
    assert fixed.net == share.net == eur(-4000)
    assert fixed.discount == share.discount == eur(-1000)


def test_line_refusals() -> None:
    refused(lambda: price_line(Line(1, eur(500), rate("0"), discount=eur(501)), prices_include_tax=False))
    refused(lambda: Line(1, eur(500), rate("0"), discount=eur(-1)))
    with pytest.raises(CurrencyMismatchError):
        Line(1, eur(500), rate("0"), discount=Money(1, "USD"))
    not_quantities: tuple[Any, ...] = (0, -1, 1.5, True, Decimal("0"), Decimal("NaN"), Decimal("Infinity"), "2")
    for quantity in not_quantities:
        error = refused(partial(Line, quantity, eur(500), rate("0")))
        assert error.body.field_errors[0].field == "quantity"


# Totals


def test_totals_are_sums_of_rounded_lines_not_a_rounded_sum() -> None:
    lines = [price_line(Line(1, eur(5), rate("10")), prices_include_tax=False) for _ in range(2)]
    # Each line's tax is 0.5 cent, rounded to 1; rounding the sum of exact taxes would give 1, not 2.
    assert totals(lines, "EUR").tax == eur(2)


def test_totals_by_rate() -> None:
    lines = [
        price_line(Line(2, eur(1000), rate("21")), prices_include_tax=False),
        price_line(Line(1, eur(450), rate("9")), prices_include_tax=False),
        price_line(Line(1, eur(999), rate("21.0"), discount=eur(99)), prices_include_tax=False),
        price_line(Line(1, eur(300), rate("0")), prices_include_tax=False),
    ]
    result = totals(lines, "EUR")
    assert result.discount == eur(99)
    assert result.subtotal == eur(2000 + 450 + 900 + 300)
    assert [(str(g.rate), g.net, g.tax) for g in result.tax_by_rate] == [
        ("0", eur(300), eur(0)),
        ("9", eur(450), eur(41)),  # 40.5 -> 41
        ("21", eur(2900), eur(420 + 189)),
    ]
    assert result.tax == eur(650)
    assert result.total == result.subtotal + result.tax == eur(4300)


def test_totals_of_nothing_and_of_mixed_currencies() -> None:
    empty = totals([], "JPY")
    assert (empty.subtotal, empty.tax, empty.total, empty.tax_by_rate) == (Money(0, "JPY"),) * 3 + ((),)
    lines = [
        price_line(Line(1, eur(100), rate("0")), prices_include_tax=False),
        price_line(Line(1, Money(100, "USD"), rate("0")), prices_include_tax=False),
    ]
    with pytest.raises(CurrencyMismatchError):
        totals(lines, "EUR")


RATES = st.one_of(
    st.sampled_from(["0", "5", "9", "10", "20", "21", "7.7", "8.875", "100"]).map(Percent.parse),
    st.decimals(min_value=0, max_value=100, places=4).map(Percent),
)
QUANTITIES = st.one_of(st.integers(1, 1000), st.decimals(min_value=Decimal("0.0001"), max_value=1000, places=4))


@st.composite
def lines(draw: st.DrawFn, currency: str) -> Line:
    quantity = draw(QUANTITIES)
    unit = Money(draw(st.integers(-(10**9), 10**9)), currency)
    before = abs(round_half_up(Fraction(quantity) * unit.minor))
    discount = draw(st.one_of(st.none(), RATES, st.integers(0, before).map(lambda minor: Money(minor, currency))))
    return Line(quantity, unit, draw(RATES), discount)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[Line], bool]:
    currency = draw(st.sampled_from(["EUR", "JPY", "KWD", "USD"]))
    return currency, draw(st.lists(lines(currency), max_size=12)), draw(st.booleans())


@given(documents())
@EXAMPLES
def test_every_line_adds_up_and_totals_are_sums_of_line_amounts(document: tuple[str, list[Line], bool]) -> None:
    currency, drafted, inclusive = document
    priced = [price_line(line, prices_include_tax=inclusive) for line in drafted]
    for line, amounts in zip(drafted, priced, strict=True):
        assert amounts.net + amounts.tax == amounts.gross
        assert amounts.before_discount - amounts.discount == (amounts.gross if inclusive else amounts.net)
        assert abs(amounts.tax.minor) <= abs(amounts.gross.minor)
        assert abs(amounts.discount.minor) <= abs(amounts.before_discount.minor)
        exact_tax = (
            Fraction(amounts.gross.minor) * line.tax_rate.fraction / (1 + line.tax_rate.fraction)
            if inclusive
            else Fraction(amounts.net.minor) * line.tax_rate.fraction
        )
        assert abs(exact_tax - amounts.tax.minor) <= Fraction(1, 2)
        # A credit line is the exact mirror of the line it corrects.
        credit = Line(line.quantity, -line.unit_amount, line.tax_rate, line.discount)
        mirrored = price_line(credit, prices_include_tax=inclusive)
        assert (mirrored.net, mirrored.tax, mirrored.gross) == (-amounts.net, -amounts.tax, -amounts.gross)
    result = totals(priced, currency)
    assert result.subtotal.minor == sum(a.net.minor for a in priced)
    assert result.tax.minor == sum(a.tax.minor for a in priced)
    assert result.total.minor == sum(a.gross.minor for a in priced)
    assert result.discount.minor == sum(a.discount.minor for a in priced)
    assert result.subtotal + result.tax == result.total
    assert total((group.tax for group in result.tax_by_rate), currency) == result.tax
    assert total((group.net for group in result.tax_by_rate), currency) == result.subtotal
    assert [g.rate.value for g in result.tax_by_rate] == sorted({a.tax_rate.value for a in priced})


# Text for people


@pytest.mark.parametrize(
    ("money", "locale", "text"),
    [
        (Money(1250, "EUR"), "en", "€12.50"),
        (Money(1250, "EUR"), "nl-NL", "€\xa012,50"),  # CLDR: Dutch puts the euro sign first
        (Money(1250, "EUR"), "nl", "€\xa012,50"),
        (Money(1250, "EUR"), "de-DE", "12,50\xa0€"),
        (Money(123456, "EUR"), "fr", "1\u202f234,56\xa0€"),
        (Money(1200, "JPY"), "en", "¥1,200"),
        (Money(1250, "KWD"), "en", "KWD\xa01.250"),  # a letter symbol gets CLDR's space
        (Money(1250, "KWD"), "de", "1,250\xa0KWD"),
        (Money(1250, "IQD"), "en", "IQD\xa01.250"),  # CLDR would show IQD 1: never rounded for display
        (Money(-123456, "USD"), "en", "-$1,234.56"),
        (Money(100, "CHF"), "en-GB", "CHF\xa01.00"),
        (Money(1250, "EUR"), "xx", "€12.50"),  # an unknown locale falls back to English
        (Money(1250, "EUR"), "nl-XX", "€\xa012,50"),  # an unknown region falls back to its language
    ],
)
def test_amounts_are_formatted_for_people(money: Money, locale: str, text: str) -> None:
    assert format_money(money, locale) == text


# Tool schemas


class Priced(BaseModel):
    price: MoneyAmount
    tax_rate: Percent


def test_money_amount_and_percent_in_a_tool_schema() -> None:
    schema = Priced.model_json_schema()
    amount = schema["$defs"]["MoneyAmount"]
    assert amount["properties"]["amount"]["type"] == "integer"
    assert amount["properties"]["currency"]["type"] == "string"
    assert amount["required"] == ["amount", "currency"] and amount["additionalProperties"] is False
    assert schema["properties"]["tax_rate"]["type"] == "string"
    parsed = Priced.model_validate_json('{"price": {"amount": 1250, "currency": "EUR"}, "tax_rate": "8.875"}')
    assert parsed.price.to_money() == eur(1250) and parsed.tax_rate == rate("8.875")
    assert parsed.model_dump(mode="json") == {"price": {"amount": 1250, "currency": "EUR"}, "tax_rate": "8.875"}
    assert MoneyAmount.of(Money(1200, "JPY")) == MoneyAmount(amount=1200, currency="JPY")
    assert Priced(price=MoneyAmount.of(eur(1)), tax_rate=rate("21")).tax_rate == rate("21")


@pytest.mark.parametrize(
    "price",
    [
        {"amount": 12.5, "currency": "EUR"},
        {"amount": 1250.0, "currency": "EUR"},
        {"amount": "1250", "currency": "EUR"},
        {"amount": True, "currency": "EUR"},
        {"amount": MAX_AMOUNT + 1, "currency": "EUR"},
        {"amount": 1250, "currency": "eur"},
        {"amount": 1250, "currency": "XXX"},
        {"amount": 1250},
        {"amount": 1250, "currency": "EUR", "amount_decimal": "12.50"},
    ],
)
def test_money_amount_refuses_floats_strings_and_unknown_currencies(price: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MoneyAmount.model_validate(price)
    with pytest.raises(ValidationError):
        Priced.model_validate_json(json.dumps({"price": price, "tax_rate": "21"}))


@pytest.mark.parametrize("tax_rate", [21, 21.0, "101", "8.87501", "-1"])
def test_a_rate_in_a_tool_schema_is_a_decimal_string(tax_rate: Any) -> None:
    with pytest.raises(ValidationError):
        Priced.model_validate({"price": {"amount": 1, "currency": "EUR"}, "tax_rate": tax_rate})


@pytest.mark.parametrize(
    ("amount", "weights", "shares"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # the odd unit goes to the earliest line on a tie
        (10, [6000, 2000, 2000], [6, 2, 2]),
        (1, [3, 7], [0, 1]),  # to the largest remainder
        (0, [5, 5], [0, 0]),
        (5, [0, 0], [0, 0]),
        (30, [10, 20], [10, 20]),  # the whole of both lines
    ],
)
def test_a_document_discount_is_split_in_whole_minor_units_that_add_up(
    amount: int, weights: list[int], shares: list[int]
) -> None:
    assert allocate(amount, weights) == shares


@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=20))
def test_allocation_adds_up_exactly_and_never_exceeds_a_line(amount: int, weights: list[int]) -> None:
    amount = min(amount, sum(weights))
    shares = allocate(amount, weights)
    assert sum(shares) == (amount if sum(weights) else 0)
    assert all(0 <= share <= weight for share, weight in zip(shares, weights, strict=True))
