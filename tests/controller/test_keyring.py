"""The controller's keyring without a broker: rotation windows, retirement, a stolen key, the
`radio keys` commands and their errors, and a signing sequence that never goes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.auth.key_rotation import retire, rotate
from controller.auth.keyring import FIRST_KEY_FILE, ROOT_KEY_FILE, Keyring, KeyringError
from controller.auth.keys import SEQ_FILE, load_or_create_signer
from protocol import load_private_key, new_private_key
from protocol.signing import save_private_key
from radio.cli import app

NOW = 1_800_000_000_000


def radio(settings, *args: str, code: int = 0) -> str:
    env = {
        "RADIO_DATA_DIR": str(settings.data_dir),
        "RADIO_SECRET_KEY": settings.secret_key,
        "RADIO_DEMO": "1",
        "RADIO_TOPIC_PREFIX": settings.topic_prefix,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result.output


def test_keyring_announces_switches_and_retires_on_time(tmp_path: Path) -> None:
    t = now_ms() - 60_000  # the windows below are over before the restart at the end
    ring = Keyring.open(tmp_path)
    root = load_private_key(tmp_path / ROOT_KEY_FILE)
    first = ring.signing_entry(t)
    assert ring.serial == 0 and ring.trusted(t) == [first.public_key]

    with pytest.raises(KeyringError, match="not this controller's root key"):
        rotate(ring, new_private_key(), t, 1000, 2000)
    new = rotate(ring, root, t, switch_in_ms=1000, retire_after_ms=2000)
    assert ring.serial == 1 and Keyring.open(tmp_path).announcement == ring.announcement
    assert ring.signing_entry(t + 999).kid == first.kid
    assert ring.signing_entry(t + 1000).kid == new.kid
    assert ring.trusted(t + 2999) == [first.public_key, new.public_key]
    assert ring.trusted(t + 3000) == [new.public_key]
    assert ring.next_change(t) == t + 1000 and ring.next_change(t + 1000) == t + 3000
    with pytest.raises(KeyringError, match="already announced"):
        rotate(ring, root, t + 10, 1000, 2000)
    with pytest.raises(KeyringError, match="retire the old key after that"):
        retire(ring, root, t + 10)

    assert ring.discard_retired(t + 2999) == []
    assert ring.discard_retired(t + 3000) == [first.kid]
    assert not (tmp_path / FIRST_KEY_FILE).exists()
    # A restart after the first key's file is gone signs with the new key; no key is made up.
    assert load_or_create_signer(tmp_path).kid == new.kid

    # The daily key is stolen: a new one signs at once and no older key is trusted any more.
    newest = rotate(ring, root, t + 5000, 600_000, 86_400_000, compromised=True)
    body = ring.body
    assert body is not None and [k.kid for k in body.keys] == [newest.kid]
    assert set(body.retired) == {first.kid, new.kid}
    assert ring.signing_entry(t + 5000).kid == newest.kid


def test_retire_ends_the_grace_period_early(tmp_path: Path) -> None:
    ring = Keyring.open(tmp_path)
    root = load_private_key(tmp_path / ROOT_KEY_FILE)
    first = ring.signing_entry(NOW).kid
    with pytest.raises(KeyringError, match="nothing to retire"):
        retire(ring, root, NOW)
    new = rotate(ring, root, NOW, 0, 86_400_000)
    assert retire(ring, root, NOW + 1) == [first]
    body = ring.body
    assert body is not None and body.serial == 2 and body.retired == [first]
    assert [(k.kid, k.not_after) for k in body.keys] == [(new.kid, None)]


def test_signing_sequence_never_goes_back_across_restarts(tmp_path: Path) -> None:
    signer = load_or_create_signer(tmp_path)
    first = signer.envelope("cmd", {}, NOW, 1000).seq
    signer.flush_seq()
    assert int((tmp_path / SEQ_FILE).read_text()) == first
    # The machine restarts with its clock an hour behind what the last run issued.
    ahead = int(time.time() * 1000) + 3_600_000
    (tmp_path / SEQ_FILE).write_text(str(ahead))
    restarted = load_or_create_signer(tmp_path)
    seqs = [restarted.envelope("cmd", {}, NOW, 1000).seq for _ in range(3)]
    assert seqs[0] > ahead and seqs == sorted(set(seqs))
    (tmp_path / SEQ_FILE).write_text("garbage")
    assert load_or_create_signer(tmp_path).envelope("cmd", {}, NOW, 1000).seq > first


def test_keys_commands_explain_what_is_wrong(make_settings, tmp_path: Path) -> None:
    settings = make_settings()
    out = radio(settings, "keys", "status")
    assert "key set 0 (never rotated)" in out and "signing now" in out
    assert "root key is still on this machine" in out
    stranger = tmp_path / "stranger.pem"
    save_private_key(new_private_key(), stranger)
    out = radio(settings, "keys", "rotate", "--root-key", str(stranger), code=2)
    assert "not this controller's root key" in out
    out = radio(settings, "keys", "rotate", "--root-key", str(tmp_path / "none.pem"), code=2)
    assert "no root key there" in out
    (tmp_path / "junk.pem").write_text("junk")
    out = radio(settings, "keys", "rotate", "--root-key", str(tmp_path / "junk.pem"), code=2)
    assert "not an Ed25519 private key" in out
    assert "nothing to retire" in radio(settings, "keys", "retire", code=2)
    out = radio(settings, "keys", "rotate", "--switch-in", "60")
    assert "key set 1 announced" in out and "stays trusted until" in out
    assert "already announced" in radio(settings, "keys", "rotate", code=2)
    assert "nodes holding key set 1: 0 of 0" in radio(settings, "keys", "status")


def now_ms() -> int:
    return int(time.time() * 1000)
