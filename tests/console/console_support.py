"""Support for the console tests: Debian's chromium driven by Playwright against a running
controller with a seeded province (two communes, four nodes, one user per role)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.core.config import Settings
from firmware_sim.config import NodeConfig
from protocol.clock import Clock
from tests.conftest import TEST_PASSWORD, RunningController, running_controller

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PHONE = {"width": 375, "height": 740}
# A microphone without a person: chromium grants it unasked and plays a beep into it.
FAKE_MICROPHONE = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
# Every browser test needs Debian's chromium; CI installs it (scripts/setup.sh --test).
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)",
)

AREAS = [
    {"id": "tinh", "name": "Tỉnh Thử", "kind": "province"},
    {"id": "xa-a", "name": "Xã An", "kind": "commune", "parent_id": "tinh"},
    {"id": "thon-a1", "name": "Thôn Đông", "kind": "village", "parent_id": "xa-a"},
    {"id": "thon-a2", "name": "Thôn Đoài", "kind": "village", "parent_id": "xa-a"},
    {"id": "xa-b", "name": "Xã Bình", "kind": "commune", "parent_id": "tinh"},
    {"id": "thon-b1", "name": "Thôn Bắc", "kind": "village", "parent_id": "xa-b"},
]
NODES = [
    ("na1", "Loa Đông 1", "thon-a1", 21.030, 105.850),
    ("na2", "Loa Đông 2", "thon-a1", 21.031, 105.853),
    ("na3", "Loa Đoài 1", "thon-a2", 21.020, 105.846),
    ("nb1", "Loa Bắc 1", "thon-b1", 21.100, 105.900),
]
USERS = [
    ("officer-a", "officer", "xa-a"),
    ("staff-a", "commune_staff", "xa-a"),
    ("tech-a", "technician", "xa-a"),
    ("staff-b", "commune_staff", "xa-b"),
    ("auditor", "auditor", None),
]


@dataclass
class Site:
    ctl: RunningController
    browser: Any
    configs: dict[str, NodeConfig]
    shots: Path | None
    contexts: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.ctl.base_url

    async def page(
        self,
        viewport: dict[str, int] | None = None,
        enforce_csp: bool = False,
        timezone_id: str | None = None,
        locale: str | None = None,
        touch: bool = False,
    ) -> Any:
        # Playwright's wait_for_function evaluates its predicate with eval inside the page, which
        # the console's Content-Security-Policy forbids; test_console_xss.py enforces it.
        # `timezone_id`: the browser's own clock zone, to show the console does not follow it.
        context = await self.browser.new_context(
            viewport=viewport or {"width": 1280, "height": 860},
            bypass_csp=not enforce_csp,
            timezone_id=timezone_id,
            locale=locale,
            # A phone: a finger for a pointer (CSS `pointer: coarse`).
            has_touch=touch,
            is_mobile=touch,
        )
        self.contexts.append(context)
        page = await context.new_page()
        page.set_default_timeout(20_000)
        return page

    async def login(
        self,
        username: str,
        viewport: dict[str, int] | None = None,
        enforce_csp: bool = False,
        timezone_id: str | None = None,
        locale: str | None = None,
        touch: bool = False,
    ) -> Any:
        """A fresh browser context logged in through the login form."""
        page = await self.page(viewport, enforce_csp, timezone_id, locale, touch)
        await page.goto(f"{self.url}/console/login")
        await page.fill("#username", username)
        await page.fill("#password", TEST_PASSWORD)
        await page.click("#login-submit")
        await page.wait_for_url(f"{self.url}/console/")
        return page

    async def shot(self, page: Any, name: str) -> None:
        """Screenshots of the main pages, kept where RADIO_CONSOLE_SCREENSHOTS points."""
        if self.shots is not None:
            await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


async def seed(ctl: RunningController) -> dict[str, NodeConfig]:
    for body in AREAS:
        r = await ctl.api("POST", "/areas", json=body)
        assert r.status_code == 201, r.text
    configs = {}
    for node_id, name, area, lat, lon in NODES:
        body = {"id": node_id, "name": name, "area_id": area, "lat": lat, "lon": lon}
        r = await ctl.api("POST", "/nodes", json=body)
        assert r.status_code == 201, r.text
        configs[node_id] = NodeConfig.model_validate(r.json()["provisioning"])
    for username, role, area in USERS:
        await ctl.login_as_new(username, role, area)
    return configs


@contextlib.asynccontextmanager
async def console_site(
    settings: Settings, browser_args: list[str] | None = None, clock: Clock | None = None
) -> AsyncIterator[Site]:
    """A running controller with the seeded province, and a headless chromium to drive it
    (`browser_args`: more chromium flags, e.g. FAKE_MICROPHONE; `clock`: the controller's)."""
    from playwright.async_api import async_playwright

    shots_dir = os.environ.get("RADIO_CONSOLE_SCREENSHOTS")
    shots = Path(shots_dir) if shots_dir else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    async with running_controller(settings, clock) as ctl:
        configs = await seed(ctl)
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS + (browser_args or [])
            )
            site = Site(ctl, browser, configs, shots)
            try:
                yield site
            finally:
                # Close the pages first: their live streams would hold the server's shutdown.
                for context in site.contexts:
                    await context.close()
                await browser.close()


async def no_horizontal_scroll(page: Any) -> bool:
    return bool(
        await page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )
