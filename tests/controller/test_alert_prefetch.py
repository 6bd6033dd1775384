"""Alert templates are on the nodes before any alert: the controller renders them at start and
lists them in every timeline's `prefetch`; nodes fetch them quietly, with their token, checked
by hash, and a template alert then sounds from that copy without any download."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from controller.alerts.alert_templates import TEMPLATES
from firmware_sim.media import MediaCache
from protocol import MediaRef
from tests.conftest import running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune


@pytest.mark.slow
async def test_nodes_hold_the_templates_and_a_template_alert_downloads_nothing(
    make_settings, monkeypatch
):
    # In the field first fetches spread over 30 s, so that a village booting does not hit the
    # server at once; here 0.5 s.
    monkeypatch.setattr(MediaCache, "prefetch_spread_s", 0.5)
    fetched: Counter[tuple[int, str]] = Counter()  # (node store, sha256) -> downloads
    fetch = MediaCache._fetch

    async def counting_fetch(self: MediaCache, ref: MediaRef) -> Any:
        fetched[(id(self), ref.sha256)] += 1
        return await fetch(self, ref)

    monkeypatch.setattr(MediaCache, "_fetch", counting_fetch)

    async with running_controller(make_settings(prerender_alert_templates=True)) as ctl:
        timelines = ctl.service.timelines
        await wait_for(lambda: len(timelines.prefetch) == len(TEMPLATES), 120, "templates rendered")
        templates = {ref.sha256 for ref in timelines.prefetch}
        configs = await make_commune(ctl, 3)
        async with fleet_of(configs) as fleet:
            await wait_for(
                lambda: all(n.media.is_ready(sha) for n in fleet.nodes for sha in templates),
                60,
                "every node to hold every template",
            )
            # Each template fetched once per node, no more.
            for node in fleet.nodes:
                assert {sha: fetched[(id(node.media), sha)] for sha in templates} == dict.fromkeys(
                    templates, 1
                ), node.node_id

            r = await ctl.api("POST", "/alerts", json={"areas": ["xa-a"], "template": "flood"})
            assert r.status_code == 201, r.text
            alert = r.json()
            assert alert["media_sha256"] in templates  # the pre-rendered audio, not a new one
            sounding = f"alert:{alert['id']}"
            await wait_for(
                lambda: all(n.playback.held_by == sounding for n in fleet.nodes),
                60,
                "every node to sound the alert",
            )
            for node in fleet.nodes:
                assert fetched[(id(node.media), alert["media_sha256"])] == 1, node.node_id
            r = await ctl.api("POST", f"/alerts/{alert['id']}/cancel")
            assert r.status_code == 200, r.text
