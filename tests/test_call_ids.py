"""The one call-id rule: the gateway's routing and storage ask the same function, so they cannot disagree."""

from __future__ import annotations

import pytest

from gateway.routes import route, valid_call_id
from iasovoice import storage
from iasovoice.call_ids import InvalidCallIdError, call_id_problem, validate_call_id
from iasovoice.storage import base

VALID = [
    "7c1b5a3e-2d4f-4e8a-9b6c-0123456789ab",  # Amazon Connect ContactId
    "CA" + "0123456789abcdef" * 2,  # Twilio CallSid
    "e2e-16k-call", "call_1.v2", "a", "x" * 128, "a.b.c", "trailing.",
]
INVALID = ["a..b", "../x", "..", "", "x" * 129, "é", "call-é", ".hidden", "-rf", "_x", "a/b", "a\\b", "a b",
           "call\n", "a%2Fb", "\u0661\u0662"]


@pytest.mark.parametrize("call_id", VALID)
def test_valid_ids_pass_everywhere(call_id: str) -> None:
    assert validate_call_id(call_id) == call_id
    assert valid_call_id(call_id)
    assert route(f"/connect/{call_id}").call_id == call_id


@pytest.mark.parametrize("call_id", INVALID)
def test_invalid_ids_fail_everywhere_with_a_reason(call_id: str) -> None:
    with pytest.raises(InvalidCallIdError, match="invalid call id: call id") as error:
        validate_call_id(call_id)
    assert isinstance(error.value, ValueError)  # storage's callers catch ValueError
    assert not valid_call_id(call_id)
    assert call_id_problem(call_id)


def test_storage_uses_the_same_rule() -> None:
    assert base.validate_call_id is validate_call_id and storage.validate_call_id is validate_call_id


def test_reasons_name_the_broken_part() -> None:
    assert call_id_problem("") == "call id is empty"
    assert "128" in (call_id_problem("x" * 129) or "")
    assert "'..'" in (call_id_problem("a..b") or "")
    assert "start with '.'" in (call_id_problem(".x") or "")
    assert call_id_problem(7) == "call id must be a string, got int"


def test_slashes_stay_in_the_id_so_they_are_refused_not_routed_elsewhere() -> None:
    assert route("/connect/../x").call_id == "../x"
    assert route("/connect/").call_id == ""
    assert route("/calls/a/b/note").call_id == "a/b"
