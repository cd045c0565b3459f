"""Redaction of secrets and personal data, for every log line the hub writes.

:func:`redact` takes a string, or dicts and lists nested at will, and returns a
copy where these are replaced by a marker:

====================  =============  =================================================
what                  marker         how it is recognised
====================  =============  =================================================
secret values         ``[secret]``   by key, in dicts, query strings (``?apikey=…``),
                                     ``key=value`` / ``key: value`` text and JSON text:
                                     password, passwd, pin, code_pin, secret, token,
                                     apikey, key, signature, authorization, cookie…;
                                     ``Bearer``/``Basic`` credentials; ``user:password@``
                                     in URLs; 4-8 digits after "pin" or "code secret"
email addresses       ``[email]``    shape (also ``%40``-encoded), or an ``email`` key
phone numbers         ``[phone]``    French (06 12 34 56 78, +33 6…, 0033…) and
                                     international ``+CC…`` shapes, or a ``phone`` key
IBANs                 ``[iban]``     country code + 2 digits + the exact length of that
                                     country's IBAN, with or without spaces
French NIR            ``[nir]``      13 digits + key (2A/2B for Corsica): compact only
                                     when the key is right, spaced in its usual groups
card numbers          ``[card]``     13-19 digits (spaces/dashes between groups) with a
                                     card-network prefix and a valid Luhn check
====================  =============  =================================================

Kept on purpose: ``NameID`` values (never touched, by key), request ids (32 hex
digits), timestamps (ISO or epoch), ordinary numbers, postcodes and INSEE codes.
Digits inside a longer run of letters and digits are never matched, so hex ids
stay whole.

:func:`redact_event` is the structlog processor (wired in :mod:`passerelle.logs`)
applied to every event, structlog's own and the standard library's. It must stay
cheap: patterns are compiled once, strings shorter than :data:`MIN_LENGTH` are
skipped, and each pattern runs only when a cheap test says it may match.

Known limits: names and postal addresses are not detected; an unquoted value in
``key=value`` text stops at the first space; numbers written in a shape not listed
above (a phone number without its leading 0, an IBAN missing a character) pass.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote_plus
from uuid import UUID

__all__ = ["MIN_LENGTH", "redact", "redact_event", "redact_text"]

SECRET = "[secret]"
EMAIL = "[email]"
PHONE = "[phone]"
IBAN = "[iban]"
NIR = "[nir]"
CARD = "[card]"

MIN_LENGTH = 5  # "pin=1": nothing shorter can hold a value worth redacting
MAX_DEPTH = 20
_KEEP = "keep"

# -- keys ------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Compared after lower-casing and removing everything but letters and digits,
# so that api_key, apiKey, X-Api-Key and api.key are one name.
_EXACT_KEYS: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "password pass passwd pwd passphrase motdepasse mdp pin codepin pincode pinnumber numpin "
            "secret token key apikey signature sig auth authorization cookie setcookie sessionid "
            "cvv cvc cvv2 cvx cryptogram cryptogramme otp"
        ),
        SECRET,
    ),
    **dict.fromkeys(
        _words("card cardnumber cardno cardnum creditcard pan ccnumber carte numcarte numerocarte cartebancaire"),
        CARD,
    ),
    **dict.fromkeys(_words("iban rib"), IBAN),
    **dict.fromkeys(_words("nir nss numsecu numerosecu ssn"), NIR),
    **dict.fromkeys(_words("email mail courriel emailaddress adressemail"), EMAIL),
    **dict.fromkeys(_words("phone phonenumber telephone tel mobile mobilephone portable fax numerotelephone"), PHONE),
    **dict.fromkeys(_words("nameid"), _KEEP),
}
_KEY_PARTS: tuple[tuple[str, str], ...] = (
    ("password", SECRET),
    ("passwd", SECRET),
    ("motdepasse", SECRET),
    ("secret", SECRET),
    ("token", SECRET),
    ("apikey", SECRET),
    ("privatekey", SECRET),
    ("accesskey", SECRET),
    ("signingkey", SECRET),
    ("signature", SECRET),
    ("credential", SECRET),
    ("authorization", SECRET),
    ("cookie", SECRET),
    ("cardnumber", CARD),
    ("iban", IBAN),
    ("securitesociale", NIR),
    ("socialsecurity", NIR),
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
# Every key above contains one of these (a test checks it): text holding none of
# them, lower-cased, has no secret key, so the costlier key=value scan is skipped.
KEY_HINTS = _words(
    "pass pwd mdp pin secret token key sig auth cookie sess cv crypto otp card carte pan iban rib nir nss "
    "secu social ssn ccn mail courriel phone tel mobile portable fax credential"
)
_KEY_HINT = re.compile("|".join(KEY_HINTS))


@functools.lru_cache(maxsize=4096)
def classify_key(key: str) -> str | None:
    """The marker replacing values under ``key``, ``_KEEP`` for NameID, or None."""
    name = _NOT_ALNUM.sub("", key.lower())
    found = _EXACT_KEYS.get(name)
    if found is not None:
        return found
    for part, marker in _KEY_PARTS:
        if part in name:
            return marker
    return None


def _meaningful(value: Any) -> bool:
    """Empty values say nothing: ``password=None`` stays readable."""
    return not (value is None or value == "" or isinstance(value, bool))


# -- patterns --------------------------------------------------------------------

# Digits never start or end inside a longer run of letters/digits (hex ids), nor
# right after or before a decimal point (floats). Each pattern starts with a
# character class and checks what precedes it only then: the regex engine skips
# ahead on its first character, several times faster than a leading lookbehind.
_AFTER_START = r"(?<!\w.)(?<!\d\..)"
_END = r"(?![\w])(?!\.\d)"

_USERINFO = re.compile(r"(?<=://)[^/\s@:]+:[^/\s@]*@")

# key=value, key: value, "key": "value" (JSON text, escaped JSON text too). The
# value is only looked at (lookahead): a value that is not replaced is scanned
# further, so "msg='password=x'" is found. Value alternatives, in order: an auth
# scheme with its credentials, a quoted string, an escaped quoted string, a bare word.
_PAIR = re.compile(
    r"""(?P<lead>(?<![\w.\-"'\\])(?:\\?["'])?)(?P<key>[A-Za-z_][\w.\-]{0,63})(?P<close>(?:\\?["'])?)"""
    r"""(?P<sep>[ \t]*[:=][ \t]*)(?=(?P<value>(?i:bearer|basic|digest|negotiate)[ \t]+[^\s"'&;,\\]+"""
    r"""|"(?:[^"\\\n]|\\.){0,4096}"|'[^'\n]{0,4096}'|\\"(?:[^"\\\n]|\\[^"]){0,4096}\\"|[^\s"'&;,}\]\\]+))"""
)
# A PIN in prose: "refused for pin 1234", "code PIN 0000".
_PIN_PROSE = re.compile(r"(?i)\b((?:code[ \t]+)?pin(?:[ \t]+code)?|code[ \t]+secret)([ \t]+)\d{4,8}\b")
# Credentials after an auth scheme, outside any key: "Bearer eyJhbGciOi…".
_AUTH_SCHEME = re.compile(r"(?i)\b(bearer|basic|digest|negotiate)([ \t]+)([A-Za-z0-9._~+/=\-]{8,})")

_EMAIL = re.compile(
    r"[\w.%+\-](?<![\w.%+\-].)[\w.%+\-]{0,63}(?:@|%40)(?:[A-Za-z0-9\-]{1,63}\.){1,8}[A-Za-z]{2,24}(?![\w\-])"
)

_NIR = re.compile(
    r"[1-478]" + _AFTER_START + r"(?P<sep>[ .]?)\d{2}[ .]?\d{2}[ .]?(?:\d{2}|2[ABab])[ .]?\d{3}[ .]?\d{3}"
    r"(?:[ .]?\d{2})?" + _END
)
_IBAN = re.compile(
    r"[A-Za-z]" + _AFTER_START + r"[A-Za-z]\d{2}(?:[ ]?[A-Za-z0-9]{4}){2,7}(?:[ ]?[A-Za-z0-9]{1,4})?(?![\w])"
)
# Visa 4, Mastercard 51-55/22-27, Amex 34/37, Diners 30/36/38, JCB 35, Discover
# and UnionPay 6, Maestro 5/6: never 1 (epoch timestamps) nor 20/21 (dates).
_CARD = re.compile(
    r"[2-6]" + _AFTER_START + r"(?:(?<=2)[2-7]|(?<=[3-6])\d)(?:\d{11,17}|\d{1,4}(?:[ \-]\d{3,6}){2,5})" + _END
)
_PHONE = re.compile(
    r"[+0]" + r"(?<![\w+].)(?<!\d\..)(?:"
    r"(?<=\+)33[ .\-]?(?:\(0\)[ .\-]?)?[1-9](?:[ .\-]?\d{2}){4}"  # France, +33
    r"|(?<=0)033[ .\-]?(?:\(0\)[ .\-]?)?[1-9](?:[ .\-]?\d{2}){4}"  # France, 0033
    r"|(?<=0)[1-9](?:[ .\-]?\d{2}){4}"  # France, national form
    r"|(?<=\+)[1-9]\d{0,2}(?:[ .\-]?\(0\))?(?:[ .\-]?\d{1,4}){2,7}"  # +CC anything
    r"|(?<=0)0[1-9]\d{0,2}[ .\-](?:[ .\-]?\d{1,4}){2,7}"  # 00 CC, separated
    r")" + _END
)
_TWO_DIGITS = re.compile(r"\d\d")

_NON_DIGITS = re.compile(r"\D")

IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
    # French overseas territories use France's format.
    "GF": 27, "GP": 27, "MQ": 27, "RE": 27, "YT": 27, "NC": 27, "PF": 27, "PM": 27, "TF": 27, "WF": 27,
    "BL": 27, "MF": 27,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def nir_key_valid(nir: str) -> bool:
    """``nir``: 15 characters, no separator; Corsica's 2A/2B count as 19/18."""
    body = nir[:13].upper().replace("2A", "19", 1).replace("2B", "18", 1)
    if not body.isdigit():
        return False
    return 97 - int(body) % 97 == int(nir[13:])


def _nir(match: re.Match[str]) -> str:
    text = match[0]
    compact = text.replace(" ", "").replace(".", "")
    if match["sep"] or compact != text:
        # Written in its groups (1 85 05 78 006 084 91): that shape is a NIR, key or not.
        return NIR
    return NIR if len(compact) == 15 and nir_key_valid(compact) else text


def _iban(match: re.Match[str]) -> str:
    text = match[0]
    compact = text.replace(" ", "")
    return IBAN if IBAN_LENGTHS.get(compact[:2].upper()) == len(compact) else text


# Short card numbers exist only in a few networks: elsewhere 13-15 digits are
# other things (a 14-digit SIRET passes the Luhn check too).
_SHORT_CARD_PREFIXES = {13: ("4",), 14: ("30", "36", "38", "39", "5", "6"), 15: ("34", "37", "5", "6")}


def _card(match: re.Match[str]) -> str:
    text = match[0]
    digits = _NON_DIGITS.sub("", text)
    if not 13 <= len(digits) <= 19:
        return text
    prefixes = _SHORT_CARD_PREFIXES.get(len(digits))
    if prefixes is not None and not digits.startswith(prefixes):
        return text
    return CARD if luhn_valid(digits) else text


def _phone(match: re.Match[str]) -> str:
    text = match[0]
    count = len(_NON_DIGITS.sub("", text))
    return PHONE if 8 <= count <= 15 else text


def _redact_pairs(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _PAIR.finditer(text):
        if match.start() < position:
            continue  # inside a value already replaced
        value = match["value"]
        if value is None:
            continue
        marker = classify_key(match["key"])
        if marker is None:
            if match["sep"].strip() == "=" and ("%" in value or "+" in value) and value[0] not in "\"'\\":
                # A query-string value: look at it decoded (camille%40example.org, 06+12+34…).
                decoded = unquote_plus(value)
                redacted = _redact_content(decoded)
                if redacted != decoded:
                    out.append(text[position : match.end()])
                    out.append(redacted)
                    position = match.end() + len(value)
            continue
        if marker == _KEEP or value in ('""', "''", "null", "None", "true", "false"):
            continue
        if value.startswith('\\"'):
            quote = '\\"'
        elif value[0] in "\"'":
            quote = value[0]
        else:
            quote = ""
        out.append(text[position : match.end()])
        out.append(f"{quote}{marker}{quote}")
        position = match.end() + len(value)
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def _auth_scheme(match: re.Match[str]) -> str:
    credentials = match[3]
    # "basic authentication" is prose: credentials hold a digit, a symbol, or are long.
    if len(credentials) >= 20 or any(c.isdigit() or c in "._~+/=-" for c in credentials):
        return f"{match[1]}{match[2]}{SECRET}"
    return match[0]


def _redact_content(text: str) -> str:
    """Personal data recognised by its shape (no key involved)."""
    if "@" in text or "%40" in text:
        text = _EMAIL.sub(EMAIL, text)
    if _TWO_DIGITS.search(text) is not None:
        text = _IBAN.sub(_iban, text)
        text = _NIR.sub(_nir, text)
        text = _CARD.sub(_card, text)
        text = _PHONE.sub(_phone, text)
    return text


def redact_text(text: str) -> str:
    """``text`` with secrets and personal data replaced by markers."""
    if len(text) < MIN_LENGTH:
        return text
    if "://" in text:
        text = _USERINFO.sub(SECRET + "@", text)
    if ("=" in text or ":" in text) and (
        _KEY_HINT.search(text.lower()) is not None or ("=" in text and ("%" in text or "+" in text))
    ):
        text = _redact_pairs(text)
    lowered = text.lower()
    if "pin" in lowered or "secret" in lowered:
        text = _PIN_PROSE.sub(lambda m: f"{m[1]}{m[2]}{SECRET}", text)
    if "bearer" in lowered or "basic" in lowered or "digest" in lowered or "negotiate" in lowered:
        text = _AUTH_SCHEME.sub(_auth_scheme, text)
    return _redact_content(text)


_PLAIN_TYPES = (bool, float, Decimal, datetime, date, time, timedelta, UUID, PurePath, Enum, type(None))


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` (string, number, or dicts/lists nested) with secrets and
    personal data replaced by markers. Values under a secret key are replaced
    whole; values under ``NameID`` are kept whole."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN_TYPES):
        return value
    if _depth > MAX_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        return {(redact_text(k) if isinstance(k, str) else k): _redact_item(k, v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(item, _depth + 1) for item in value]
    if isinstance(value, int):
        if abs(value) < 10**9:
            return value
        text = str(value)
        redacted = redact_text(text)
        return value if redacted == text else redacted
    if isinstance(value, (bytes, bytearray)):
        return redact_text(bytes(value).decode("utf-8", errors="replace"))
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return redact_text(str(value))


def _redact_item(key: Any, value: Any, depth: int = 0) -> Any:
    if isinstance(key, str):
        marker = classify_key(key)
        if marker == _KEEP:
            return value
        if marker is not None:
            return marker if _meaningful(value) else value
    return redact(value, depth)


# Fields every line has and none can hold personal data.
_SKIP_FIELDS = frozenset({"timestamp", "level", "logger", "request_id", "_record", "_from_structlog"})


def redact_event(logger: Any, method_name: str, event_dict: Any) -> Any:
    """structlog processor: redact every field of the event (after ``format_exc_info``,
    so that tracebacks are redacted too)."""
    for key, value in event_dict.items():
        if key in _SKIP_FIELDS:
            continue
        event_dict[key] = _redact_item(key, value)
    return event_dict
