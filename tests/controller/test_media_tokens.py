"""Media tokens are checked against the registry and expire: a retired or re-provisioned node's
token is refused, an expired one too, and a node renews its own with its broker login."""

from __future__ import annotations

import time

from controller.auth.keys import media_token
from controller.core.models import Node
from protocol import MediaRef
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune

NO_SUCH = "0" * 64  # with a valid token: 404; with a refused one: 401


async def test_retired_reprovisioned_and_expired_tokens_are_refused(make_settings):
    async with running_controller(make_settings()) as ctl:
        configs = await make_commune(ctl, 2)
        url = f"{ctl.base_url}/media/{NO_SUCH}.mp3"

        async def status(token: str) -> int:
            r = await ctl.http.get(url, headers={"Authorization": f"Bearer {token}"})
            return r.status_code

        n0, n1 = configs
        assert await status(n0.media_token) == 404 and await status(n1.media_token) == 404
        # Retired: its token (and the firmware and stream routes' check) is dead at once.
        assert (await ctl.api("POST", "/nodes/n0/retire")).status_code == 200
        assert await status(n0.media_token) == 401
        # Provisioned again: the old token is dead, the new file's works.
        with ctl.service.db.session() as s:
            fresh = ctl.service.registry.reprovision(s, s.get(Node, "n1"))
            s.commit()
        assert await status(n1.media_token) == 401
        assert await status(fresh["media_token"]) == 404
        # Expired: made for the node's current credential, but its time is over.
        with ctl.service.db.session() as s:
            credential = s.get(Node, "n1").mqtt_password_hash
        secret = ctl.service.settings.secret_key
        assert await status(media_token(secret, "n1", credential, int(time.time()) + 60)) == 404
        assert await status(media_token(secret, "n1", credential, int(time.time()) - 1)) == 401
        # The renewal takes only the node's broker login, and not from a retired node.
        renew = f"{ctl.base_url}/media/token"
        r = await ctl.http.post(renew, auth=("n1", fresh["password"]))
        assert r.status_code == 200 and await status(r.json()["media_token"]) == 404
        assert (await ctl.http.post(renew, auth=("n1", "wrong"))).status_code == 401
        assert (await ctl.http.post(renew, auth=("n0", n0.password or ""))).status_code == 401
        assert (await ctl.http.post(renew)).status_code == 401


async def test_a_node_with_an_expired_token_renews_it_and_downloads(make_settings):
    async with running_controller(make_settings()) as ctl:
        [config] = await make_commune(ctl, 1)
        r = await ctl.api("POST", "/announcements", json={"title": "Họp", "text": "Họp thôn."})
        assert r.status_code == 201, r.text
        ann = r.json()
        with ctl.service.db.session() as s:
            credential = s.get(Node, "n0").mqtt_password_hash
        secret = ctl.service.settings.secret_key
        config.media_token = media_token(secret, "n0", credential, int(time.time()) - 1)
        async with fleet_of([config]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 1, 20, "the node to connect")
            node = fleet.nodes[0]
            sha = ann["media_sha256"]
            size = ctl.service.store.size(sha)
            ref = MediaRef(url=f"{ctl.base_url}/media/{sha}.mp3", sha256=sha, size=size)
            node.media.prefetch_spread_s = 0  # no random first delay (up to 30 s in the field)
            node.media.prefetch([ref])
            await wait_for(lambda: node.media.is_ready(sha), 20, "the download")
            assert node.media.credential is not None and node.media.credential.renewals == 1
            assert node.media.token != config.media_token
