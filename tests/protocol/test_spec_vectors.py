"""The signature test vectors of docs/protocol.md ("Canonical JSON and signatures") against the
protocol code: every vector in docs/vectors/signatures.json is recomputed — canonical bytes,
Ed25519 signature, the verdict of the node's verifier — and the canonical form as the document
defines it, written out here from its rules alone, must give the same bytes as `canonical`.

The vectors are made by this module (`python -m tests.protocol.test_spec_vectors --write`);
the test fails when the file and the code disagree, so one of them must be changed on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Envelope, RejectedMessage, Verifier, key_id, public_key_b64
from protocol.signing import canonical

DOCS = Path(__file__).resolve().parents[2] / "docs"
VECTORS = DOCS / "vectors" / "signatures.json"

# RFC 8032, section 7.1, TEST 1: an implementer can check their Ed25519 library on it first.
SEED_HEX = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
TOPIC = "radio/v1/node/loa-01/timeline"
IAT = 1_795_837_149_123


def vector_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEED_HEX))


# The canonical form exactly as docs/protocol.md words it, without json.dumps. ---------------

_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)  # everything else as itself, UTF-8 encoded below
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: [ord(c) for c in name])  # by code point
        return "{" + ",".join(f"{_string(n)}:{_value(value[n])}" for n in names) + "}"
    raise TypeError(f"not in the canonical form: {type(value).__name__}")


def as_documented(data: dict[str, Any]) -> bytes:
    return _value(data).encode("utf-8")


# The vectors -------------------------------------------------------------------------------


def _envelope(kind: str, env_id: str, seq: int, body: dict[str, Any], exp_ms: int) -> Envelope:
    """Signed as the controller's `Signer` signs, with a fixed id and seq so that the vectors
    stay the same from one run to the next."""
    key = vector_key()
    env = Envelope(
        kind=kind, id=env_id, seq=seq, iat=IAT, exp=exp_ms, kid=key_id(key.public_key()), body=body
    )
    env.sig = base64.b64encode(key.sign(canonical(env.model_dump(exclude={"sig"})))).decode()
    return env


def _escaped_wire(env: Envelope) -> str:
    """The same envelope written another way: members in another order, spaces, and every
    non-ASCII character escaped (\\uXXXX, a surrogate pair above U+FFFF)."""
    data = env.model_dump()
    reordered = {k: data[k] for k in reversed(list(data))}
    return json.dumps(reordered, ensure_ascii=True, indent=1)


TIMELINE_BODY: dict[str, Any] = {
    "node_id": "loa-01",
    "version": 7,
    "generated_at": 1_795_837_149_000,
    "horizon_end": 1_795_923_549_000,
    "items": [
        {
            "item_id": "s12@1795837169000",
            "broadcast_id": "12",
            "start": 1_795_837_169_000,
            "duration_ms": 17_850,
            "priority": "normal",
            "title": "Thông báo tiêm chủng",
            "media": {
                "url": "http://10.0.0.1:8080/media/" + "ab" * 32 + ".mp3",
                "sha256": "ab" * 32,
                "size": 107_520,
            },
            "volume": None,
            "stream": None,
        }
    ],
    "prefetch": [],
}

ALERT_BODY: dict[str, Any] = {
    "alert_id": "5f1c2a9e0b7d4c1e",
    "version": 1,
    "action": "play",
    "area": "thon-1",
    "title": "Cảnh báo lũ: sơ tán ngay! 🌊",
    "media": {
        "url": "http://10.0.0.1:8080/media/" + "cd" * 32 + ".mp3",
        "sha256": "cd" * 32,
        "size": 98_304,
    },
    "duration_ms": 16_200,
    "repeat": 3,
    "pause_ms": 3000,
    "volume": 100,
    "test": True,
    "expires": 1_795_840_749_123,
    "play_by": 1_795_837_216_723,
}

ESCAPES_BODY: dict[str, Any] = {
    "node_id": "loa-01",
    "command": "volume",
    "args": {"level": 40},
    "zz-extension": {
        'quote"backslash\\slash/': "tab\there, newline\nthere, bell\u0007, del\u007f",
        "separators": "line\u2028paragraph\u2029",
        "b": [3, {"y": None, "x": False}, [], {}],
        "a": {"é": 1, "E": 2, "～": 3, "😀": 4, "e": 5},
        "numbers": [0, -1, 9_007_199_254_740_991],
    },
}


def build_vectors() -> dict[str, Any]:
    key = vector_key()
    public = key.public_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    timeline = _envelope(
        "timeline", "0f9a3c1e5b7d4f60a2c4e6081b3d5f70", IAT, TIMELINE_BODY, IAT + 604_800_000
    )
    alert = _envelope(
        "alert", "7c1e5b9d3f0a4c2e8b6d0f1a3c5e7092", IAT + 1, ALERT_BODY, 1_795_840_749_123
    )
    escapes = _envelope(
        "cmd", "3a5c7e9f1b2d4f6081a3c5e7f9b1d3f5", IAT + 2, ESCAPES_BODY, IAT + 30_000
    )
    timeline_wire = timeline.model_dump_json()
    with_unknown = json.loads(timeline_wire)
    with_unknown["trace"] = {"hop": 1, "via": "relay-2"}
    nulls_dropped = json.loads(timeline_wire)
    del nulls_dropped["body"]["items"][0]["volume"]
    tampered = json.loads(escapes.model_dump_json())
    tampered["body"]["zz-extension"]["numbers"][0] = 1
    cases: list[tuple[str, str, str, str]] = [
        (
            "timeline",
            "A timeline as the controller sends it: non-ASCII text as UTF-8, nulls kept.",
            timeline_wire,
            "accepted",
        ),
        (
            "alert",
            "A test alert whose title has Vietnamese letters and a character above U+FFFF.",
            alert.model_dump_json(),
            "accepted",
        ),
        (
            "escapes-and-nesting",
            "Escapes, control characters, U+2028, nested objects sorted at every depth by code "
            "point (U+FF5E before U+1F600), arrays in their order, unknown body members signed.",
            escapes.model_dump_json(),
            "accepted",
        ),
        (
            "wire-form-differs",
            "The alert written another way (member order, white space, \\u escapes): the same "
            "canonical bytes, so the same signature.",
            _escaped_wire(alert),
            "accepted",
        ),
        (
            "unknown-envelope-member",
            "The timeline with a member the envelope does not define: not signed, ignored.",
            json.dumps(with_unknown, ensure_ascii=False),
            "accepted",
        ),
        (
            "null-dropped",
            "The timeline with a null member of the body left out: the body is signed as sent, "
            "so the signature no longer matches.",
            json.dumps(nulls_dropped, ensure_ascii=False),
            "bad_signature",
        ),
        (
            "unknown-body-member-changed",
            "The escapes vector with an unknown body member changed: body members are signed "
            "whether the receiver knows them or not.",
            json.dumps(tampered, ensure_ascii=False),
            "bad_signature",
        ),
    ]
    vectors = []
    for name, description, message, outcome in cases:
        data = json.loads(message)
        env = Envelope.model_validate(data)
        signed = env.model_dump(exclude={"sig"})
        canon = canonical(signed)
        vectors.append(
            {
                "name": name,
                "description": description,
                "kind": env.kind,
                "message": message,
                "signed_members": signed,
                "canonical": canon.decode("utf-8"),
                "canonical_hex": canon.hex(),
                "signature": base64.b64encode(key.sign(canon)).decode(),
                "outcome": outcome,
            }
        )
    return {
        "description": "Test vectors for docs/protocol.md, 'Canonical JSON and signatures'. "
        "`message` is what arrives on the topic; `signed_members` the eight envelope members a "
        "receiver keeps from it; `canonical` (and its UTF-8 bytes in hex) the signing input; "
        "`signature` the Ed25519 signature of those bytes by the test key; `outcome` whether the "
        "message's own `sig` verifies (`accepted`) or not (`bad_signature`).",
        "key": {
            "algorithm": "Ed25519 (RFC 8032)",
            "seed_hex": SEED_HEX,
            "private_key_pem": pem,
            "public_key_base64": public_key_b64(public),
            "kid": key_id(public),
        },
        "vectors": vectors,
    }


def render() -> str:
    return json.dumps(build_vectors(), indent=2, ensure_ascii=False) + "\n"


# The tests ---------------------------------------------------------------------------------


def _published() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


def test_the_published_vectors_are_what_the_code_computes() -> None:
    assert VECTORS.read_text(encoding="utf-8") == render(), (
        f"{VECTORS} and the protocol code disagree: "
        "python -m tests.protocol.test_spec_vectors --write, then read the diff"
    )


def test_the_key_is_the_rfc8032_key_and_its_kid_is_derived_as_documented() -> None:
    key = _published()["key"]
    private = serialization.load_pem_private_key(key["private_key_pem"].encode(), password=None)
    assert isinstance(private, Ed25519PrivateKey)
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # RFC 8032 7.1 TEST 1's public key.
    assert raw.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert base64.b64encode(raw).decode() == key["public_key_base64"]
    assert hashlib.sha256(raw).hexdigest()[:16] == key["kid"]


def _published_vectors() -> list[dict[str, Any]]:
    """The vectors to judge one by one (none when the file is missing: the test above fails)."""
    if not VECTORS.is_file():
        return []
    vectors: list[dict[str, Any]] = _published()["vectors"]
    return vectors


@pytest.mark.parametrize("vector", _published_vectors(), ids=lambda v: v["name"])
def test_each_vector_is_recomputed_and_judged_by_the_node_verifier(vector: dict[str, Any]) -> None:
    key = _published()["key"]
    private = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(key["seed_hex"]))
    message = vector["message"].encode("utf-8")
    env = Envelope.model_validate(json.loads(message))
    signed = env.model_dump(exclude={"sig"})
    assert signed == vector["signed_members"]
    assert set(signed) == {"v", "kind", "id", "seq", "iat", "exp", "kid", "body"}
    canon = canonical(signed)
    assert canon.hex() == vector["canonical_hex"]
    assert canon.decode("utf-8") == vector["canonical"]
    # The document's definition, implemented on its own, gives the same bytes as the code.
    assert as_documented(signed) == canon
    assert base64.b64encode(private.sign(canon)).decode() == vector["signature"]
    assert (env.sig == vector["signature"]) == (vector["outcome"] == "accepted")

    verifier = Verifier({key["kid"]: private.public_key()})
    if vector["outcome"] == "accepted":
        accepted = verifier.verify(TOPIC, message, vector["kind"], IAT)
        assert accepted.body == vector["signed_members"]["body"]
    else:
        with pytest.raises(RejectedMessage) as refused:
            verifier.verify(TOPIC, message, vector["kind"], IAT)
        assert refused.value.reason == vector["outcome"]


def test_the_wire_form_does_not_change_the_signature() -> None:
    by_name = {v["name"]: v for v in _published()["vectors"]}
    alert, rewritten = by_name["alert"], by_name["wire-form-differs"]
    assert alert["message"] != rewritten["message"]
    assert "\\u" in rewritten["message"] and "\\u" not in alert["message"]
    assert alert["canonical_hex"] == rewritten["canonical_hex"]
    assert alert["signature"] == rewritten["signature"]


def test_the_document_points_to_the_vectors() -> None:
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    assert "vectors/signatures.json" in text
    assert _published()["key"]["kid"] in text  # the worked example names the test key


# Any JSON a body may hold: the documented rules and the code agree on all of it.
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=6))
def test_the_documented_rules_and_the_code_agree_on_any_body(body: dict[str, Any]) -> None:
    signed = {
        "v": 1,
        "kind": "cmd",
        "id": "x",
        "seq": 1,
        "iat": 1,
        "exp": 2,
        "kid": "k",
        "body": body,
    }
    assert as_documented(signed) == canonical(signed)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(render(), encoding="utf-8")
        print(VECTORS)
    else:
        print("python -m tests.protocol.test_spec_vectors --write", file=sys.stderr)
