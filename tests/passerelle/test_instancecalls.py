"""One instance calling another's endpoint in process (passerelle.instancecalls)."""

from __future__ import annotations

import pytest

from passerelle.envelope import APIError, NotFound, WrongParameter
from passerelle.requestid import CURRENT_REQUEST_ID


async def test_an_instance_calls_another(make_instance):
    caller = await make_instance("sample", "gis", config={"greeting": "Salut"})
    await make_instance("sample", "ville", config={"greeting": "Bonjour"})
    # Parameters are validated and converted by the called endpoint's own rules.
    assert (
        await caller.call_instance("sample/ville", "hello", name="Camille", times=2)
        == "Bonjour Camille Bonjour Camille"
    )
    # A raw endpoint's answer as it is; an envelope's data.
    assert await caller.call_instance("sample/ville", "raw", q="12 rue carnot") == [{"display_name": "12 rue carnot"}]
    assert await caller.call_instance("sample/ville", "people") == ["a", "b"]


async def test_the_callee_sees_who_calls_and_the_request_id(make_instance):
    caller = await make_instance("sample", "gis")
    await make_instance("sample", "ville")
    token = CURRENT_REQUEST_ID.set("req-42")
    try:
        echoed = await caller.call_instance("sample/ville", "whoami")
    finally:
        CURRENT_REQUEST_ID.reset(token)
    assert echoed == {"apiuser": "instance:sample/gis", "request_id": "req-42"}


async def test_errors_are_those_of_the_called_endpoint(make_instance):
    caller = await make_instance("sample", "gis")
    await make_instance("sample", "ville")
    with pytest.raises(WrongParameter, match="missing parameter 'name'"):
        await caller.call_instance("sample/ville", "hello")
    with pytest.raises(WrongParameter, match="times"):
        await caller.call_instance("sample/ville", "hello", name="x", times=9)
    with pytest.raises(WrongParameter, match="unknown parameter 'colour'"):
        await caller.call_instance("sample/ville", "hello", name="x", colour="red")
    with pytest.raises(APIError, match="no such family"):
        await caller.call_instance("sample/ville", "refuse")
    with pytest.raises(NotFound, match="no sample instance named 'nowhere'"):
        await caller.call_instance("sample/nowhere", "hello", name="x")
    with pytest.raises(NotFound, match="unknown endpoint 'nope'"):
        await caller.call_instance("sample/ville", "nope")
    with pytest.raises(NotFound, match="write it type/slug"):
        await caller.call_instance("ville", "hello", name="x")
