"""Key sets and replay state: root keys only announce, signing keys count inside their window,
a newer serial replaces the set, and the replay state restored after a restart refuses what
was accepted before it while letting retained state come back once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from protocol import KeySetBody, RejectedMessage, Signer, Verifier, new_private_key, public_key_b64
from protocol.keyset import MAX_FUTURE_SKEW_MS, KeySet
from protocol.replay import ReplayState

NOW = 1_800_000_000_000


def entry(signer: Signer, not_before: int = 0, not_after: int | None = None) -> dict[str, Any]:
    return {
        "kid": signer.kid,
        "public_key": public_key_b64(signer.public_key),
        "not_before": not_before,
        "not_after": not_after,
    }


def key_set(serial: int, *entries: dict[str, Any], retired: tuple[str, ...] = ()) -> KeySetBody:
    return KeySetBody.model_validate({"serial": serial, "keys": entries, "retired": retired})


def reason(verifier: Verifier, payload: bytes, kind: str, now: int = NOW, topic: str = "t") -> str:
    with pytest.raises(RejectedMessage) as err:
        verifier.verify(topic, payload, kind, now)
    return err.value.reason


def test_root_keys_sign_announcements_and_nothing_else() -> None:
    root, daily = Signer(new_private_key()), Signer(new_private_key())
    verifier = Verifier({daily.kid: daily.public_key}, {root.kid: root.public_key})
    body = key_set(1, entry(daily)).model_dump()
    assert verifier.verify("keys", root.sign("keys", body, NOW, 60_000), "keys", NOW).body == body
    assert reason(verifier, daily.sign("keys", body, NOW, 60_000), "keys") == "unknown_key"
    assert reason(verifier, root.sign("timeline", {}, NOW, 60_000), "timeline") == "unknown_key"
    assert verifier.verify("tl", daily.sign("timeline", {}, NOW, 60_000), "timeline", NOW)


def test_signing_keys_count_only_inside_their_window() -> None:
    old, new = Signer(new_private_key()), Signer(new_private_key())
    keys = KeySet.from_b64([public_key_b64(old.public_key)])
    later = NOW + MAX_FUTURE_SKEW_MS + 60_000
    assert keys.adopt(key_set(1, entry(old, 0, NOW + 1000), entry(new, later)))
    assert not keys.adopt(key_set(1, entry(new)))  # the same serial again changes nothing
    assert keys.refusal(old.kid, NOW + 999) is None
    assert keys.refusal(old.kid, NOW + 1000) == "retired_key"
    assert keys.refusal(new.kid, NOW) == "key_not_yet_valid"
    assert keys.refusal(new.kid, later - MAX_FUTURE_SKEW_MS) is None  # a slow clock still works
    assert keys.refusal(Signer(new_private_key()).kid, NOW) == "unknown_key"
    assert keys.adopt(key_set(2, entry(new)))
    assert keys.refusal(old.kid, 0) == "retired_key"  # left the set: retired, not unknown

    verifier = Verifier(keys)
    assert reason(verifier, old.sign("cmd", {}, NOW, 60_000), "cmd") == "retired_key"
    assert verifier.verify("cmd", new.sign("cmd", {}, later, 60_000), "cmd", later)


def test_a_provisioned_serial_refuses_older_sets_and_takes_its_own_windows() -> None:
    old, new = Signer(new_private_key()), Signer(new_private_key())
    keys = KeySet.from_b64([public_key_b64(old.public_key), public_key_b64(new.public_key)], 3)
    assert not keys.adopt(key_set(2, entry(old)))  # an old announcement, replayed: stale
    assert keys.adopt(key_set(3, entry(old, 0, NOW), entry(new)))  # its own set: the windows
    assert keys.refusal(old.kid, NOW) == "retired_key"
    assert not keys.adopt(key_set(3, entry(old)))


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["keys"][0].update(kid="0" * 16),  # kid is not the key's id
        lambda b: b["keys"][0].update(public_key="bm90IGEga2V5"),  # not a key
        lambda b: b["keys"].append(dict(b["keys"][0])),  # listed twice
        lambda b: b["keys"][0].update(not_before=5, not_after=5),  # empty window
        lambda b: b.update(retired=[b["keys"][0]["kid"]]),  # both trusted and retired
        lambda b: b.update(keys=[]),  # nothing left to trust
        lambda b: b.update(serial=0),
    ],
)
def test_malformed_key_sets_are_refused(change: Any) -> None:
    body = key_set(1, entry(Signer(new_private_key()))).model_dump()
    change(body)
    with pytest.raises(ValidationError):
        KeySetBody.model_validate(body)


def test_replay_state_restored_after_a_restart() -> None:
    signer = Signer(new_private_key())
    verifier = Verifier({signer.kid: signer.public_key})
    timeline = signer.sign("timeline", {"v": 1}, NOW, 60_000)
    old_cmd = signer.sign("cmd", {"n": 1}, NOW, 60_000)
    cmd = signer.sign("cmd", {"n": 2}, NOW, 60_000)
    verifier.verify("tl", timeline, "timeline", NOW)
    verifier.verify("cmd", cmd, "cmd", NOW)
    assert reason(verifier, cmd, "cmd", topic="cmd") == "duplicate"  # in one run: benign

    saved = dict(verifier.replay.last)
    restarted = Verifier({signer.kid: signer.public_key}, replay=ReplayState.restore(saved))
    # The retained timeline comes back once (its state was lost), then is a duplicate again.
    assert restarted.verify("tl", timeline, "timeline", NOW)
    assert reason(restarted, timeline, "timeline", topic="tl") == "duplicate"
    # A command is never retained: the same one after a restart is a replay, as is an older one.
    assert reason(restarted, cmd, "cmd", topic="cmd") == "replayed"
    assert reason(restarted, old_cmd, "cmd", topic="cmd") == "replayed"
    assert restarted.verify("cmd", signer.sign("cmd", {"n": 3}, NOW, 60_000), "cmd", NOW)


def test_signer_switches_keys_and_keeps_its_sequence() -> None:
    signer = Signer(new_private_key(), seq_floor=10**15)
    first = signer.envelope("cmd", {}, NOW, 1000)
    assert first.seq > 10**15
    old_kid = signer.kid
    signer.switch(new_private_key())
    second = signer.envelope("cmd", {}, NOW, 1000)
    assert second.kid == signer.kid != old_kid and second.seq > first.seq
    verifier = Verifier({signer.kid: signer.public_key})
    assert verifier.verify("cmd", second.model_dump_json().encode(), "cmd", NOW)
    assert signer.envelope("keys", {}, NOW, 1000, seq=7).seq == 7


ROOT = Signer(new_private_key())
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=25,
)


@given(st.binary(max_size=400) | JSON.map(lambda j: json.dumps(j).encode()))
def test_junk_on_the_keys_topic_is_refused_cleanly(payload: bytes) -> None:
    verifier = Verifier({}, {ROOT.kid: ROOT.public_key})
    with pytest.raises(RejectedMessage):
        verifier.verify("keys", payload, "keys", NOW)


SIGNERS = [Signer(new_private_key()) for _ in range(3)]
KEY_ENTRY = st.sampled_from(SIGNERS).map(
    lambda s: {"kid": s.kid, "public_key": public_key_b64(s.public_key)}
)
# Bodies shaped like key sets (often valid, sometimes not) beside arbitrary JSON in their fields.
KEY_SET_LIKE = st.fixed_dictionaries(
    {"serial": st.integers(-1, 5), "keys": st.lists(KEY_ENTRY, max_size=3)},
    optional={"retired": st.lists(st.sampled_from([s.kid for s in SIGNERS]), max_size=2)},
)


@given(st.dictionaries(st.sampled_from(["serial", "keys", "retired"]), JSON) | KEY_SET_LIKE)
def test_any_signed_body_is_a_key_set_or_a_validation_error(body: dict[str, Any]) -> None:
    verifier = Verifier({}, {ROOT.kid: ROOT.public_key})
    env = verifier.verify("keys", ROOT.sign("keys", body, NOW, 60_000), "keys", NOW)
    assert env.body == body  # the signed body arrives as it was signed
    keyset = KeySet({})
    try:
        parsed = KeySetBody.model_validate(env.body)
    except ValidationError:
        return  # refused whole, before anything could be adopted
    # Valid: adopted as announced, exactly these keys and this serial, the rest retired.
    assert keyset.adopt(parsed)
    assert set(keyset.keys) == {e["kid"] for e in body["keys"]}
    assert keyset.serial == body["serial"] >= 1
    assert not set(keyset.keys) & keyset.retired
