"""Event contract v1: the one definition the decoder enforces and the JSON Schema comes from."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from schemas.event import Device, EventType

CONTRACT_VERSION = 1

# Names other analytics stacks emit for our event types (GA4, Segment); normalised on decode.
EVENT_TYPE_ALIASES: dict[str, EventType] = {
    **{t.value: t for t in EventType},
    "begin_checkout": EventType.CHECKOUT,
    "Page Viewed": EventType.PAGE_VIEW,
    "Product Added": EventType.ADD_TO_CART,
    "Product Removed": EventType.REMOVE_FROM_CART,
    "Checkout Started": EventType.CHECKOUT,
    "Order Completed": EventType.PURCHASE,
}


class Kind(enum.Enum):
    ID = "id"  # short identifier string
    TEXT = "text"  # free text with a length cap
    EVENT_TYPE = "event_type"
    TIMESTAMP = "timestamp"  # RFC 3339 with offset, or integer epoch milliseconds
    DEVICE = "device"
    COUNTRY = "country"  # ISO 3166-1 alpha-2
    CURRENCY = "currency"  # ISO 4217
    DECIMAL = "decimal"  # >= 0, JSON number or string
    ITEMS = "items"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool
    description: str
    max_length: int = 128


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("event_id", Kind.ID, True, "Unique per event; a repeat is a duplicate."),
    FieldSpec(
        "event_type",
        Kind.EVENT_TYPE,
        True,
        "page_view, add_to_cart, remove_from_cart, checkout, purchase, or a GA4/Segment alias.",
    ),
    FieldSpec(
        "occurred_at",
        Kind.TIMESTAMP,
        True,
        "Event time: RFC 3339 with offset (2026-11-20T10:15:02.123Z) or integer epoch ms.",
    ),
    FieldSpec("site_id", Kind.ID, True, "The shop."),
    FieldSpec("session_id", Kind.ID, True, "Storefront session; also the Kafka message key."),
    FieldSpec("user_id", Kind.ID, False, "Logged-in customer, if known."),
    FieldSpec("utm_source", Kind.TEXT, False, "Campaign source (google, newsletter, ...).", 256),
    FieldSpec("utm_medium", Kind.TEXT, False, "Campaign medium (cpc, email, ...).", 256),
    FieldSpec("utm_campaign", Kind.TEXT, False, "Campaign name.", 256),
    FieldSpec("referrer", Kind.TEXT, False, "Referring URL.", 2048),
    FieldSpec("device", Kind.DEVICE, False, "desktop, mobile, tablet or other."),
    FieldSpec("country", Kind.COUNTRY, False, "ISO 3166-1 alpha-2 country code."),
    FieldSpec("variant", Kind.TEXT, False, "Experiment arm.", 128),
    FieldSpec("page", Kind.TEXT, False, "Path or URL.", 2048),
    FieldSpec("items", Kind.ITEMS, False, "Cart lines: [{sku, quantity >= 1, price >= 0}]."),
    FieldSpec("value", Kind.DECIMAL, False, "Monetary value >= 0, as a JSON number or string."),
    FieldSpec("currency", Kind.CURRENCY, False, "ISO 4217 code; required when value is set."),
    FieldSpec("order_id", Kind.ID, False, "Required for purchase; orders dedupe on it."),
    FieldSpec("cart_id", Kind.ID, False, "Cart identifier; defaults to the session."),
)

DEVICES: tuple[str, ...] = tuple(d.value for d in Device)
MAX_ITEMS = 500
MAX_QUANTITY = 1_000_000
# Bounded so a price can't overflow the Decimal(18, 2) columns downstream.
MAX_MONEY = 10**15
# ClickHouse stores money as Decimal(38, 6); more places would be silently rounded.
MAX_DECIMAL_PLACES = 6

# Patterns shared by the decoder (re.search) and the JSON Schema ("pattern", ECMA 262), so both
# read them alike: "(?![\s\S])" ends the string in both dialects, where "$" in Python also
# matches before a final newline.
_END = r"(?![\s\S])"
# Exact decimal strings only: no sign, exponent, spaces or digit separators; < MAX_MONEY.
MONEY_PATTERN = rf"^[0-9]{{1,15}}(?:\.[0-9]{{1,{MAX_DECIMAL_PLACES}}})?{_END}"
# RFC 3339 date-time with an offset (upper-case T and Z, as JSON Schema's "date-time").
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    rf"(?:Z|[+-][0-9]{{2}}:[0-9]{{2}}){_END}"
)
# Ids: no control characters (a NUL byte in an id is never meant).
PLAIN_TEXT_PATTERN = rf"^[^\x00-\x1f\x7f]*{_END}"
COUNTRY_PATTERN = rf"^[A-Za-z]{{2}}{_END}"

# ISO 4217 codes in use (with funds and precious metals), less XTS (testing) and XXX (none).
CURRENCIES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK
    MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN
    PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB
    TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XAG
    XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 -- a table of codes reads better than 180 quoted strings
)
# Case-insensitive, spelled out ([Ee][Uu][Rr]) since ECMA 262 has no inline (?i).
CURRENCY_PATTERN = (
    "^(?:"
    + "|".join("".join(f"[{c}{c.lower()}]" for c in code) for code in sorted(CURRENCIES))
    + f"){_END}"
)
