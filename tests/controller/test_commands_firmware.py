"""Firmware: the catalogue (upload, release, the newest release, authenticated download) and a
village's nodes updated by one command, reporting progress and their new version; a corrupted
image is refused by the node, which keeps the version it runs."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlmodel import select

from controller.commands.firmware import latest_version, version_key
from controller.core.models import Node
from tests.conftest import RunningController, running_controller, wait_for
from tests.controller.test_broadcast_e2e import fleet_of, make_commune

IMAGE = bytes(range(256)) * 2048  # 512 KiB


async def upload(
    ctl: RunningController, version: str, data: bytes = IMAGE, token: str | None = None, **form: Any
) -> httpx.Response:
    return await ctl.api(
        "POST",
        "/firmware",
        data={"version": version, **form},
        files={"file": ("image.bin", data, "application/octet-stream")},
        token=token,
    )


async def finished(
    ctl: RunningController, command_id: str, seen: set[str] | None = None
) -> dict[str, Any] | None:
    """The command's view once every node has answered (or timed out); None before."""
    v = (await ctl.api("GET", f"/commands/{command_id}")).json()
    if seen is not None:
        seen.update(v["command"]["counts"])
    return v if v["command"]["done"] else None


def test_versions_are_ordered_as_people_read_them():
    ordered = ["1.2", "1.9.9", "1.10", "2.0.0", "2.0.1", "10.0"]
    assert sorted(reversed(ordered), key=version_key) == ordered


async def test_catalogue_upload_release_and_download_with_a_node_token(make_settings):
    async with running_controller(make_settings()) as ctl:
        await make_commune(ctl, 1)
        r = await upload(ctl, "2.0.0", notes="Sửa lỗi âm lượng")
        assert r.status_code == 201, r.text
        image = r.json()
        assert image["sha256"] == hashlib.sha256(IMAGE).hexdigest() and image["size"] == len(IMAGE)
        assert image["latest"] and image["released"]
        assert (await upload(ctl, "2.0.0")).status_code == 409
        assert (await upload(ctl, "bad version!")).status_code == 422
        assert (await upload(ctl, "2.0.1", b"")).status_code == 422
        tech = await ctl.login_as_new("tech", "technician", "xa-a")
        r = await upload(ctl, "2.0.2", token=tech)
        assert r.status_code == 403
        r = await upload(ctl, "2.1.0", IMAGE[::-1], released="false")
        assert r.status_code == 201 and not r.json()["latest"]
        with ctl.service.db.session() as s:
            assert latest_version(s) == "2.0.0"
        listed = (await ctl.api("GET", "/firmware", token=tech)).json()
        assert [i["version"] for i in listed] == ["2.1.0", "2.0.0"]
        assert listed[1]["latest"] and listed[1]["nodes_running"] == 0
        r = await ctl.api("POST", "/firmware/2.1.0/release")
        assert r.status_code == 200 and r.json()["latest"]
        assert (await ctl.api("POST", "/firmware/9.9/release")).status_code == 404
        with ctl.service.db.session() as s:
            assert latest_version(s) == "2.1.0"

        url = f"{ctl.base_url}/firmware/{image['sha256']}.bin"
        with ctl.service.db.session() as s:
            token = ctl.service.registry.media_token(s.get(Node, "n0"))
        r = await ctl.http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.content == IMAGE
        assert (await ctl.http.get(url)).status_code == 401
        forged = {"Authorization": f"Bearer n0.{'0' * 40}"}
        assert (await ctl.http.get(url, headers=forged)).status_code == 401
        bad = {"Authorization": f"Bearer {token}"}
        assert (
            await ctl.http.get(f"{ctl.base_url}/firmware/..%2f.bin", headers=bad)
        ).status_code == 404
        audit = (await ctl.api("GET", "/audit", params={"action": "firmware."})).json()
        assert {e["action"] for e in audit} == {"firmware.add", "firmware.release"}


@pytest.mark.slow
async def test_a_village_is_updated_by_one_command_and_a_bad_image_is_refused(make_settings):
    async with running_controller(make_settings(firmware_timeout_s=60)) as ctl:
        configs = await make_commune(ctl, 40)  # 20 in thon-1, 20 in thon-2 (of which 1 runs)
        village = [c for c in configs if c.node_id in {f"n{i}" for i in range(0, 40, 2)}]
        async with fleet_of([*village, configs[1]]) as fleet:
            await wait_for(lambda: fleet.summary().connected == 21, 30, "21 nodes to connect")

            def online() -> int:
                with ctl.service.db.session() as s:
                    return len(s.exec(select(Node).where(Node.status == "online")).all())

            await wait_for(lambda: online() == 21, 20, "the registry to see them online")
            assert (await upload(ctl, "2.0.0")).status_code == 201
            r = await ctl.api(
                "POST",
                "/commands",
                json={
                    "command": "update_firmware",
                    "args": {"version": "2.0.0"},
                    "areas": ["thon-1"],
                },
            )
            assert r.status_code == 202, r.text
            cmd = r.json()
            assert cmd["nodes"] == 20 and cmd["args"] == {"version": "2.0.0"}

            seen: set[str] = set()
            v = await wait_for(
                lambda: finished(ctl, cmd["id"], seen), 60, "the village's update to finish"
            )
            assert v["command"]["counts"] == {"ok": 20}, v["nodes"]
            assert v["versions"] == {"2.0.0": 20}
            stages = ["downloading", "verifying", "installing", "rebooting", "done"]
            assert all(n["stages"] == stages for n in v["nodes"])
            assert seen >= {"pending", "ok"}
            by_id = {n.node_id: n for n in fleet.nodes}
            assert all(by_id[c.node_id].boot == 2 for c in village)
            assert by_id["n1"].firmware.version == "sim-1.0.0" and by_id["n1"].boot == 1

            async def registry_says() -> bool:
                nodes = (await ctl.api("GET", "/nodes", params={"area_id": "thon-1"})).json()[
                    "items"
                ]
                return {n["firmware"] for n in nodes if n["status"] == "online"} == {"2.0.0"}

            await wait_for(registry_says, 20, "the registry to hear the new version")

            # A corrupted image: the node refuses it and keeps running 2.0.0.
            image = (await upload(ctl, "2.1.0", IMAGE[::-1])).json()
            stored = ctl.service.firmware.store.path_for(image["sha256"])
            stored.write_bytes(IMAGE)  # same size, other bytes: sha256 no longer matches
            r = await ctl.api(
                "POST",
                "/commands",
                json={"command": "update_firmware", "args": {"version": "2.1.0"}, "nodes": ["n0"]},
            )
            v = await wait_for(lambda: finished(ctl, r.json()["id"]), 30, "the refusal")
            [row] = v["nodes"]
            assert row["state"] == "failed" and "sha256 mismatch" in row["detail"]
            assert row["firmware"] == "2.0.0" and "rebooting" not in row["stages"]
            assert by_id["n0"].firmware.version == "2.0.0" and by_id["n0"].boot == 2
