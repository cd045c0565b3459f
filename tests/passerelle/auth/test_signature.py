"""Publik signatures: the golden vector of protocols.md §8, signing, and every
tampered variant refused with a precise reason (for the logs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from passerelle.auth.signature import (
    SignatureError,
    check,
    hobo_shared_secret,
    parse,
    sign_query,
    sign_url,
    verify,
)

KEY = "s3cr3t"
QUERY = "orig=hub.example.org&email=jean%40example.org"
TIMESTAMP = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
NONCE = "0123456789abcdef"
SIGNED_STRING = (
    "orig=hub.example.org&email=jean%40example.org&algo=sha256&timestamp=2024-05-01T10%3A00%3A00Z"
    "&nonce=0123456789abcdef"
)
SIGNATURE = "mbKjuhG9TbLGtFtT2KeEROAvFuYjqPqK2d1SZo2bTWE="
GOLDEN = SIGNED_STRING + "&signature=mbKjuhG9TbLGtFtT2KeEROAvFuYjqPqK2d1SZo2bTWE%3D"
NOW = TIMESTAMP + timedelta(seconds=5)


def reason(raw_query: str, keys=KEY, **kwargs) -> str:
    kwargs.setdefault("now", NOW)
    with pytest.raises(SignatureError) as info:
        verify(raw_query, keys, **kwargs)
    return info.value.reason


def resign(signed_string: str, key: str = KEY, algo: str = "sha256") -> str:
    digest = hmac.new(key.encode(), signed_string.encode(), getattr(hashlib, algo)).digest()
    return signed_string + "&signature=" + quote(base64.b64encode(digest))


# -- the golden vector ------------------------------------------------------------


def test_golden_vector_signs_exactly():
    assert sign_query(QUERY, KEY, timestamp=TIMESTAMP, nonce=NONCE) == GOLDEN
    # A naive datetime is UTC; a string is taken as is.
    assert sign_query(QUERY, KEY, timestamp=TIMESTAMP.replace(tzinfo=None), nonce=NONCE) == GOLDEN
    assert sign_query(QUERY, KEY, timestamp="2024-05-01T10:00:00Z", nonce=NONCE) == GOLDEN


def test_golden_vector_verifies():
    query = verify(GOLDEN, KEY, now=NOW)
    assert query.signed == SIGNED_STRING.encode()
    assert base64.b64encode(query.signature).decode() == SIGNATURE
    assert (query.orig, query.algo, query.timestamp, query.nonce) == ("hub.example.org", "sha256", TIMESTAMP, NONCE)


def test_golden_vector_from_a_url_and_with_orig_added():
    url = sign_url("https://hub.example.org/x/y/?" + QUERY + "#top", KEY, timestamp=TIMESTAMP, nonce=NONCE)
    assert url == "https://hub.example.org/x/y/?" + GOLDEN + "#top"
    added = sign_url(
        "https://hub.example.org/x/y/?email=jean%40example.org", KEY, orig="hub.example.org", timestamp=TIMESTAMP
    )
    assert added.startswith("https://hub.example.org/x/y/?email=jean%40example.org&orig=hub.example.org&algo=")
    assert verify(added.partition("?")[2], KEY, now=NOW).orig == "hub.example.org"
    # The same orig already there is not repeated; a different one is an error.
    assert sign_query(QUERY, KEY, orig="hub.example.org", timestamp=TIMESTAMP, nonce=NONCE) == GOLDEN
    with pytest.raises(ValueError, match="different 'orig'"):
        sign_query(QUERY, KEY, orig="other.example.org")


def test_default_nonce_is_128_random_bits_and_timestamp_now():
    first, second = (verify(sign_query("orig=a", KEY), KEY) for _ in range(2))
    assert len(first.nonce) == 32 and int(first.nonce, 16) >= 0
    assert first.nonce != second.nonce
    assert abs(datetime.now(UTC) - first.timestamp) < timedelta(seconds=2)


@pytest.mark.parametrize("algo", ["sha1", "sha256", "sha512"])
def test_each_allowed_algorithm(algo):
    raw = sign_query("orig=a&NameID=abc", KEY, algo=algo, timestamp=TIMESTAMP, nonce=NONCE)
    assert verify(raw, KEY, now=NOW).algo == algo
    assert raw == resign(raw.partition("&signature=")[0], algo=algo)


def test_signer_refuses_other_algorithms():
    with pytest.raises(ValueError, match="algo"):
        sign_query("orig=a", KEY, algo="md5")


def test_empty_query_can_be_signed():
    raw = sign_query("", KEY, timestamp=TIMESTAMP, nonce=NONCE)
    assert raw.startswith("algo=sha256&")
    # ...but the hub refuses it: no orig.
    assert reason(raw) == "missing orig"


def test_rotation_keys_any_of_them_matches():
    assert check(parse(GOLDEN), ["new-key", KEY], now=NOW) == 1
    assert check(parse(GOLDEN), [KEY, "new-key"], now=NOW) == 0
    assert verify(GOLDEN, ("", KEY), now=NOW).orig == "hub.example.org"  # empty keys are skipped
    assert reason(GOLDEN, ["other", ""]) == "signature mismatch"
    assert reason(GOLDEN, []) == "signature mismatch"


# -- tampering ----------------------------------------------------------------------


def byte_variants():
    """The golden query with one byte of the signed part changed, one position at a time."""
    signed = SIGNED_STRING
    for position, char in enumerate(signed):
        if char in "&=":
            continue  # changing a separator changes the parameter list: tested below
        replacement = "B" if char != "B" else "C"
        yield position, signed[:position] + replacement + signed[position + 1 :]


@pytest.mark.parametrize(("position", "tampered"), list(byte_variants()))
def test_any_byte_of_any_parameter_changed_is_refused(position, tampered):
    raw = tampered + GOLDEN[len(SIGNED_STRING) :]
    # A changed value breaks the HMAC (or the value's format); a changed name makes a
    # required parameter missing; a broken percent-escape makes the query unreadable.
    assert reason(raw) in {
        "signature mismatch",
        "malformed timestamp",
        "algorithm not allowed",
        "malformed query string",
        *(f"missing {name}" for name in ("orig", "algo", "timestamp", "nonce")),
    }, position


@pytest.mark.parametrize("position", range(len(SIGNATURE) - 1))  # the last is padding
def test_any_byte_of_the_signature_changed_is_refused(position):
    char = SIGNATURE[position]
    changed = SIGNATURE[:position] + ("A" if char != "A" else "B") + SIGNATURE[position + 1 :]
    assert reason(SIGNED_STRING + "&signature=" + quote(changed)) in {"signature mismatch", "malformed signature"}


@pytest.mark.parametrize(
    "raw",
    [
        # the same parameters, in another order
        "email=jean%40example.org&orig=hub.example.org&algo=sha256&timestamp=2024-05-01T10%3A00%3A00Z"
        "&nonce=0123456789abcdef&signature=mbKjuhG9TbLGtFtT2KeEROAvFuYjqPqK2d1SZo2bTWE%3D",
        "orig=hub.example.org&email=jean%40example.org&nonce=0123456789abcdef&algo=sha256"
        "&timestamp=2024-05-01T10%3A00%3A00Z&signature=mbKjuhG9TbLGtFtT2KeEROAvFuYjqPqK2d1SZo2bTWE%3D",
        # re-encoded by a proxy: '@' and ':' decoded, or '%3a' in lower case
        GOLDEN.replace("%40", "@"),
        GOLDEN.replace("%3A", ":"),
        GOLDEN.replace("%3A", "%3a"),
        # a parameter added, or dropped
        SIGNED_STRING + "&NameID=abc" + GOLDEN[len(SIGNED_STRING) :],
        GOLDEN.replace("&email=jean%40example.org", ""),
        "NameID=abc&" + GOLDEN,
    ],
)
def test_reordered_reencoded_or_changed_parameters_are_refused(raw):
    assert reason(raw) == "signature mismatch"


def test_signature_must_be_the_last_parameter():
    assert reason(GOLDEN + "&NameID=abc") == "the signature is not the last parameter"
    moved = "signature=mbKjuhG9TbLGtFtT2KeEROAvFuYjqPqK2d1SZo2bTWE%3D&" + SIGNED_STRING
    assert reason(moved) == "no signature, or the signature is the first parameter"
    assert reason(GOLDEN + "&signature=xyz") == "the signature is not the last parameter"
    assert reason(SIGNED_STRING) == "no signature, or the signature is the first parameter"
    # a second signature hidden in the signed part
    assert reason("signature=abc&" + GOLDEN) == "several signature parameters"


@pytest.mark.parametrize("name", ["orig", "algo", "timestamp", "nonce"])
def test_missing_parameter_is_refused(name):
    params = [p for p in SIGNED_STRING.split("&") if not p.startswith(name + "=")]
    assert reason(resign("&".join(params))) == f"missing {name}"
    # present but empty is missing too
    params = [p if not p.startswith(name + "=") else name + "=" for p in SIGNED_STRING.split("&")]
    assert reason(resign("&".join(params))) == f"missing {name}"


@pytest.mark.parametrize("name", ["orig", "algo", "timestamp", "nonce"])
def test_repeated_parameter_is_refused(name):
    value = parse(GOLDEN).__getattribute__(name)
    value = value.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(value, datetime) else value
    assert reason(resign(SIGNED_STRING + f"&{name}={quote(value, safe='')}")) == f"several {name} parameters"


@pytest.mark.parametrize("algo", ["md5", "sha224", "sha3_256", "SHA256", "none", "blake2b"])
def test_forbidden_algorithms_are_refused(algo):
    signed = SIGNED_STRING.replace("algo=sha256", f"algo={algo}")
    digest = hmac.new(KEY.encode(), signed.encode(), hashlib.md5).digest()
    assert reason(signed + "&signature=" + quote(base64.b64encode(digest))) == "algorithm not allowed"


def test_malformed_timestamp_and_signature():
    assert reason(resign(SIGNED_STRING.replace("2024-05-01T10%3A00%3A00Z", "1714557600"))) == "malformed timestamp"
    assert reason(resign(SIGNED_STRING.replace("%3A00Z", "%3A00"))) == "malformed timestamp"
    assert reason(SIGNED_STRING + "&signature=not*base64") == "malformed signature"
    # URL-safe base64 is not Publik's
    urlsafe = base64.urlsafe_b64encode(base64.b64decode("++//" * 10 + "+w==")).decode()
    assert reason(SIGNED_STRING + "&signature=" + urlsafe) == "malformed signature"
    # the right alphabet, the wrong length for sha256
    assert reason(SIGNED_STRING + "&signature=" + quote(base64.b64encode(b"x" * 20))) == "malformed signature"
    assert reason(SIGNED_STRING + "&signature=%ff%fe") == "malformed signature"
    assert reason("orig=%ff&algo=sha256&signature=abc") == "malformed query string"


def test_non_canonical_base64_of_the_right_bytes_is_refused():
    # The last character before '=' carries two padding bits: 'E' (000100) and 'F'
    # (000101) decode to the same bytes, but Publik compares the strings.
    assert SIGNATURE[-2] == "E"
    assert base64.b64decode(SIGNATURE[:-2] + "F=") == base64.b64decode(SIGNATURE)
    assert reason(SIGNED_STRING + "&signature=" + quote(SIGNATURE[:-2] + "F=")) == "malformed signature"
    assert reason(SIGNED_STRING + "&signature=" + quote(SIGNATURE[:-1])) == "malformed signature"  # no padding


def test_a_bare_plus_in_the_signature_is_read_as_plus():
    raw = sign_query("orig=a", KEY, timestamp=TIMESTAMP, nonce="n1")
    for nonce in (f"n{i}" for i in range(200)):
        raw = sign_query("orig=a", KEY, timestamp=TIMESTAMP, nonce=nonce)
        if "%2B" in raw:
            break
    assert "%2B" in raw
    assert verify(raw.replace("%2B", "+"), KEY, now=NOW).nonce == nonce


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (-31, "timestamp more than 30 seconds in the future"),
        (-3600, "timestamp more than 30 seconds in the future"),
        (31, "timestamp more than 30 seconds in the past"),
        (86400, "timestamp more than 30 seconds in the past"),
    ],
)
def test_timestamp_beyond_the_window_in_either_direction(offset, expected):
    assert reason(GOLDEN, now=TIMESTAMP + timedelta(seconds=offset)) == expected


@pytest.mark.parametrize("offset", [-30, -1, 0, 1, 30])
def test_timestamp_within_the_window(offset):
    assert verify(GOLDEN, KEY, now=TIMESTAMP + timedelta(seconds=offset))


def test_window_is_configurable():
    assert verify(GOLDEN, KEY, now=TIMESTAMP + timedelta(seconds=100), max_age=120)
    assert reason(GOLDEN, now=TIMESTAMP + timedelta(seconds=11), max_age=10) == (
        "timestamp more than 10 seconds in the past"
    )


def test_signature_is_checked_before_the_timestamp():
    # An old request with a wrong key says "mismatch": only authentic requests reach the clock.
    assert reason(GOLDEN, "wrong", now=TIMESTAMP + timedelta(days=1)) == "signature mismatch"


def test_signed_query_repr_has_no_secret():
    text = repr(parse(GOLDEN))
    assert SIGNATURE not in text and NONCE not in text and "jean" not in text


# -- Hobo's pairwise secret --------------------------------------------------------------


def test_hobo_shared_secret_matches_the_formula():
    s1, s2 = "wcs-secret-key", "passerelle-secret-key"
    expected = hex(int(hashlib.sha256(s1.encode()).hexdigest(), 16) ^ int(hashlib.sha256(s2.encode()).hexdigest(), 16))[
        2:
    ]
    assert hobo_shared_secret(s1, s2) == expected == hobo_shared_secret(s2, s1)
    assert hobo_shared_secret("a", "b") == "f4b46904ca22e480c94b7ed6fec26d792c3b95f89ca8623872f3992b7a724826"
    # Python's hex drops leading zeros, and so must we to agree with Hobo.
    assert hobo_shared_secret("same", "same") == "0"
