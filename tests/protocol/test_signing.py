"""Signed envelopes: nodes accept only what the controller signed, in time, once, in order."""

from __future__ import annotations

import base64
import json

import pytest

from protocol import RejectedMessage, Signer, Verifier, new_private_key

NOW = 1_800_000_000_000


@pytest.fixture
def signer() -> Signer:
    return Signer(new_private_key())


@pytest.fixture
def verifier(signer: Signer) -> Verifier:
    return Verifier({signer.kid: signer.public_key})


def reason(verifier: Verifier, payload: bytes, kind: str = "timeline", now: int = NOW) -> str:
    with pytest.raises(RejectedMessage) as err:
        verifier.verify("topic", payload, kind, now)
    return err.value.reason


def test_signed_message_is_accepted(signer: Signer, verifier: Verifier) -> None:
    env = verifier.verify(
        "topic", signer.sign("timeline", {"x": "Thôn Đông"}, NOW, 60_000), "timeline", NOW
    )
    assert env.body == {"x": "Thôn Đông"}


def test_unsigned_forged_tampered_expired_and_early_messages_are_refused(
    signer: Signer, verifier: Verifier
) -> None:
    good = json.loads(signer.sign("timeline", {"x": 1}, NOW, 60_000))
    assert reason(verifier, json.dumps({**good, "sig": ""}).encode()) == "unsigned"
    assert reason(verifier, json.dumps({**good, "body": {"x": 2}}).encode()) == "bad_signature"
    forged = Signer(new_private_key()).sign("timeline", {"x": 1}, NOW, 60_000)
    assert reason(verifier, forged) == "unknown_key"
    rogue = json.loads(Signer(new_private_key()).sign("timeline", {"x": 1}, NOW, 60_000))
    rogue["kid"] = signer.kid
    assert reason(verifier, json.dumps(rogue).encode()) == "bad_signature"
    assert reason(verifier, signer.sign("timeline", {}, NOW - 120_000, 60_000)) == "expired"
    assert reason(verifier, signer.sign("timeline", {}, NOW + 3_600_000, 60_000)) == "not_yet_valid"
    assert reason(verifier, signer.sign("cmd", {}, NOW, 60_000)) == "wrong_kind"
    assert reason(verifier, b"{not json") == "malformed"
    assert (
        reason(verifier, json.dumps({**good, "sig": base64.b64encode(b"x" * 64).decode()}).encode())
        == "bad_signature"
    )


def test_replayed_older_message_is_refused_and_a_repeat_is_a_duplicate(
    signer: Signer, verifier: Verifier
) -> None:
    first = signer.sign("timeline", {"v": 1}, NOW, 60_000)
    second = signer.sign("timeline", {"v": 2}, NOW, 60_000)
    verifier.verify("topic", second, "timeline", NOW)
    assert reason(verifier, second) == "duplicate"
    assert reason(verifier, first) == "replayed"


def test_one_message_for_many_nodes_is_checked_per_node_key_and_replay(signer: Signer) -> None:
    """A process remembers messages it verified; that never lets through what a node's own
    keys would refuse, and freshness and replay stay per node."""
    area = signer.sign("alert", {"alert_id": "a1"}, NOW, 60_000)
    nodes = [Verifier({signer.kid: signer.public_key}) for _ in range(3)]
    for node in nodes:
        assert node.verify("topic", area, "alert", NOW).body == {"alert_id": "a1"}
    assert reason(nodes[0], area, "alert") == "duplicate"
    assert reason(nodes[1], area, "alert", now=NOW + 120_000) == "duplicate"
    # A node that trusts another key under the same id: the remembered answer is not its own.
    impostor = Verifier({signer.kid: new_private_key().public_key()})
    assert reason(impostor, area, "alert") == "bad_signature"
    assert reason(Verifier({}), area, "alert") == "unknown_key"
    assert reason(Verifier({signer.kid: signer.public_key}), area, "timeline") == "wrong_kind"
    # One byte changed is another message: checked in full.
    tampered = area.replace(b'"a1"', b'"a2"')
    assert reason(Verifier({signer.kid: signer.public_key}), tampered, "alert") == "bad_signature"
    fresh = Verifier({signer.kid: signer.public_key})
    assert reason(fresh, area, "alert", now=NOW + 120_000) == "expired"
