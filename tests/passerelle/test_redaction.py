"""Redaction of secrets and personal data: what goes, and what must stay."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from passerelle.logs import configure_logging
from passerelle.redaction import (
    _EXACT_KEYS,
    _KEY_PARTS,
    KEY_HINTS,
    classify_key,
    luhn_valid,
    nir_key_valid,
    redact,
    redact_event,
    redact_text,
)

NAME_ID = "f3a9c2e47b1d4e8a9c0b2d4e6f8a1c3e"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # emails
        ("contact camille.dupont@example.org please", "contact [email] please"),
        ("CAMILLE+tag@Mairie-Exemple.FR", "[email]"),
        ("/people/camille.dupont%40example.org/", "/people/[email]/"),
        ("<camille@sub.example.co.uk>", "<[email]>"),
        # phones
        ("tel 06 12 34 56 78 ok", "tel [phone] ok"),
        ("0612345678", "[phone]"),
        ("06.12.34.56.78", "[phone]"),
        ("06-12-34-56-78", "[phone]"),
        ("01 23 45 67 89", "[phone]"),
        ("+33 6 12 34 56 78", "[phone]"),
        ("+33612345678", "[phone]"),
        ("+33 (0)6 12 34 56 78", "[phone]"),
        ("0033 6 12 34 56 78", "[phone]"),
        ("0033612345678", "[phone]"),
        ("tel:+33612345678", "tel:[phone]"),
        ("+44 20 7946 0958", "[phone]"),
        ("+1 415 555 2671", "[phone]"),
        ("0044 20 7946 0958", "[phone]"),
        # IBANs
        ("FR76 3000 6000 0112 3456 7890 189", "[iban]"),
        ("iban FR7630006000011234567890189.", "iban [iban]."),
        ("fr7630006000011234567890189", "[iban]"),
        ("DE89 3704 0044 0532 0130 00", "[iban]"),
        ("GB82WEST12345698765432", "[iban]"),
        ("BE68539007547034", "[iban]"),
        # NIR
        ("nir 1 85 05 78 006 084 91", "nir [nir]"),
        ("185057800608491", "[nir]"),
        ("2 85 05 2A 006 084 82", "[nir]"),
        ("285052A00608482", "[nir]"),
        ("1 85 05 78 006 084", "[nir]"),  # spaced, without its key
        # cards (Luhn-valid)
        ("card 4111 1111 1111 1111", "card [card]"),
        ("4111111111111111", "[card]"),
        ("4111-1111-1111-1111", "[card]"),
        ("378282246310005", "[card]"),
        ("3782 822463 10005", "[card]"),
        ("5555555555554444", "[card]"),
        ("2223003122003222", "[card]"),
        # secrets by key
        ("?apikey=abc123&signature=xyz&q=rue", "?apikey=[secret]&signature=[secret]&q=rue"),
        ("/x/?orig=wcs&NameID=" + NAME_ID + "&pin=1234", "/x/?orig=wcs&NameID=" + NAME_ID + "&pin=[secret]"),
        ("https://user:pa55@host.example.org/x?a=1", "https://[secret]@host.example.org/x?a=1"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "Authorization: [secret]"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: [secret]"),
        ("sent Bearer eyJhbGciOiJIUzI1NiJ9.abc.def", "sent Bearer [secret]"),
        ("cookie=sessionid%3Dabc", "cookie=[secret]"),
        (
            '{"password": "hunter 2", "pin": 1234, "name": "x"}',
            '{"password": "[secret]", "pin": [secret], "name": "x"}',
        ),
        ('{"card_number": "12345", "iban": "x"}', '{"card_number": "[card]", "iban": "[iban]"}'),
        ('{"data": "{\\"password\\": \\"hunter2\\"}"}', '{"data": "{\\"password\\": \\"[secret]\\"}"}'),
        ("msg='login password=hunter2 done'", "msg='login password=[secret] done'"),
        ("X-Api-Key: abcdef", "X-Api-Key: [secret]"),
        ("client_secret=abc&code_pin=0000", "client_secret=[secret]&code_pin=[secret]"),
        ("refused for pin 739146, retry", "refused for pin [secret], retry"),
        ("Code PIN 0000 bloqué", "Code PIN [secret] bloqué"),
        ("code secret 1234", "code secret [secret]"),
        # personal data in query strings, encoded
        ("q=06+12+34+56+78&email=camille%40example.org", "q=[phone]&email=[email]"),
        ("q=06%2012%2034%2056%2078", "q=[phone]"),
        ("?tel=%2B33612345678", "?tel=[phone]"),
    ],
)
def test_redacted(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "request id 8d5e2c7a0b1e4f3a9c6d2e1f0a9b8c7d",
        "8D5E2C7A0B1E4F3A9C6D2E1F0A9B8C7D",
        "f3a9c2e4-7b1d-4e8a-9c0b-2d4e6f8a1c3e",
        "2026-05-12T10:11:12.123456+00:00",
        "2026-05-12 10:11:12,123",
        "epoch 1715508672",
        "ms 1715508672123",
        "ns 1715508672123456789",
        "20260512101112",
        "postcode 75014, insee 2A004 and 97411",
        "count 123456 of 7890123",
        "duration 12.345678901234 s",
        "ip 192.168.1.10 and 10.0.0.1:8000",
        "version 3.11.4",
        "https://example.org/path?x=1&limit=20",
        "at 10:11:12",
        "price 1234.56 EUR",
        "order 4970101234567890",  # fails the Luhn check
        "4111111111111112",
        "185057800608490",  # compact NIR with a wrong key
        "1234567890123",  # 13 digits: neither a NIR (no key) nor a card
        "SIRET 35600000000048",  # Luhn-valid, but 14 digits outside card networks
        "de12345678901234567890ab",  # IBAN shape, wrong length for Germany
        "FR76 3000",
        "basic authentication failed",
        "the token expired",
        "keytype: API",
        "NameID=" + NAME_ID,
        "short",
        "0612",
        "a=1",
        "spin 1234 times",
        "pin 12 in the map",
    ],
)
def test_kept(text):
    assert redact_text(text) == text


def test_luhn_and_nir_keys():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert nir_key_valid("185057800608491")
    assert not nir_key_valid("185057800608492")
    assert nir_key_valid("285052A00608482")
    assert nir_key_valid("285052a00608482")


def test_nested_values():
    value = {
        "password": "hunter2",
        "pin": None,  # empty values stay readable
        "apiKey": 5,
        "NameID": NAME_ID,
        "nested": {
            "list": ["06 12 34 56 78", 4111111111111111, 42, 1715508672123, 3.5, True],
            "headers": {"Authorization": "Bearer abc.def.ghi", "Cookie": "a=b", "Accept": "text/html"},
            "contacts": ({"email": "x"},),
            "camille@example.org": "key holding an email",
        },
        "card": {"number": "4111111111111111", "expiry": "12/30"},
    }
    assert redact(value) == {
        "password": "[secret]",
        "pin": None,
        "apiKey": "[secret]",
        "NameID": NAME_ID,
        "nested": {
            "list": ["[phone]", "[card]", 42, 1715508672123, 3.5, True],
            "headers": {"Authorization": "[secret]", "Cookie": "[secret]", "Accept": "text/html"},
            "contacts": [{"email": "[email]"}],
            "[email]": "key holding an email",
        },
        "card": "[card]",
    }
    # The input is not changed.
    assert value["password"] == "hunter2"


def test_name_id_is_kept_whole_under_its_key():
    assert redact({"NameID": "camille@example.org", "name_id": "x@example.org"}) == {
        "NameID": "camille@example.org",
        "name_id": "x@example.org",
    }


def test_other_values():
    assert redact(b"mail camille@example.org") == "mail [email]"
    assert redact(RuntimeError("no account for camille@example.org")) == "RuntimeError: no account for [email]"
    assert redact(None) is None
    deep: dict = {}
    cursor = deep
    for _ in range(50):
        cursor["x"] = {}
        cursor = cursor["x"]
    assert "[too deep]" in json.dumps(redact(deep))


def test_every_secret_key_has_a_hint():
    # redact_text skips the key scan when no hint is in the text: none may be missing.
    names = [name for name, marker in _EXACT_KEYS.items() if marker != "keep"] + [part for part, _ in _KEY_PARTS]
    for name in names:
        assert any(hint in name for hint in KEY_HINTS), name


@pytest.mark.parametrize(
    ("key", "marker"),
    [
        ("password", "[secret]"),
        ("db_password", "[secret]"),
        ("Mot-de-passe", "[secret]"),
        ("code_pin", "[secret]"),
        ("api_key", "[secret]"),
        ("X-Api-Key", "[secret]"),
        ("access_token", "[secret]"),
        ("Set-Cookie", "[secret]"),
        ("card_number", "[card]"),
        ("IBAN", "[iban]"),
        ("num_secu", "[nir]"),
        ("e-mail", "[email]"),
        ("telephone", "[phone]"),
        ("name", None),
        ("keytype", None),
        ("monkey", None),
        ("spinach", None),
        ("insee", None),
        ("postcode", None),
    ],
)
def test_key_classes(key, marker):
    assert classify_key(key) == marker


def test_processor_skips_fixed_fields_and_redacts_the_rest():
    event = {
        "event": "login of camille@example.org",
        "timestamp": "2026-05-12T10:11:12Z",
        "request_id": "8d5e2c7a0b1e4f3a9c6d2e1f0a9b8c7d",
        "password": "x",
        "query": {"apikey": "k", "NameID": NAME_ID},
        "exception": 'Traceback…\nValueError: bad IBAN FR7630006000011234567890189 for "0612345678"',
        "error": ValueError("card 4111 1111 1111 1111"),
    }
    assert redact_event(None, "info", event) == {
        "event": "login of [email]",
        "timestamp": "2026-05-12T10:11:12Z",
        "request_id": "8d5e2c7a0b1e4f3a9c6d2e1f0a9b8c7d",
        "password": "[secret]",
        "query": {"apikey": "[secret]", "NameID": NAME_ID},
        "exception": 'Traceback…\nValueError: bad IBAN [iban] for "[phone]"',
        "error": "ValueError: card [card]",
    }


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_structlog_and_stdlib_lines_are_redacted(monkeypatch, fmt):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stdout", stream)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", fmt)
    structlog.configure(cache_logger_on_first_use=False)
    try:
        log = structlog.get_logger("test")
        log.info("structlog line", email="camille@example.org", body={"pin": "9731"}, NameID=NAME_ID)
        logging.getLogger("some.library").warning(
            "stdlib line for %s, iban %s", "camille@example.org", "FR76 3000 6000 0112 3456 7890 189"
        )
        try:
            raise ValueError("card 4111111111111111 refused for 06 12 34 56 78")
        except ValueError:
            log.exception("structlog traceback")
            logging.getLogger("some.library").exception("stdlib traceback")
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
    output = stream.getvalue()
    for value in ("camille@example.org", "9731", "FR76 3000", "4111111111111111", "06 12 34 56 78"):
        assert value not in output, output
    assert NAME_ID in output
    assert output.count("[email]") == 2
    assert "[card]" in output
    assert "ValueError" in output
    if fmt == "json":
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert [line["event"] for line in lines] == [
            "structlog line",
            "stdlib line for [email], iban [iban]",
            "structlog traceback",
            "stdlib traceback",
        ]
        assert "[phone]" in lines[3]["exception"]
