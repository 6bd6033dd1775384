"""Whether the controller is there: its retained state message, and what the node's reports
wait for (a broker drops what no one subscribes to)."""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from firmware_sim.clock_watch import ClockWatch
from firmware_sim.trust import Reject
from protocol import ControllerState

log = logging.getLogger(__name__)


class ControllerPresence:
    """Reports wait while the controller is away, but only once a controller has been heard,
    so that a broker without one still gets reports."""

    def __init__(self, node_id: str, clock_watch: ClockWatch, reject: Reject) -> None:
        self.node_id = node_id
        self.clock_watch = clock_watch
        self.reject = reject
        self.online: bool | None = None
        self.heard = False
        self.event_arrays = False  # the controller reads several events in one message
        self.up = asyncio.Event()

    def on_state(self, topic: str, payload: bytes) -> None:
        try:
            state = ControllerState.model_validate_json(payload)
        except (ValidationError, ValueError) as exc:
            self.reject("malformed", type(exc).__name__, topic)
            return
        online = state.status == "online"
        if online != self.online:
            log.info("%s: controller %s (%s)", self.node_id, state.status, state.instance or "?")
        self.online = online
        self.heard = True
        self.event_arrays = state.event_arrays
        self.clock_watch.issued(state.ts)
        if online:
            self.up.set()
        else:
            self.up.clear()

    def session_started(self) -> None:
        """A new connection: away until the (retained) controller state says online."""
        self.up.clear()

    async def wait_to_report(self) -> None:
        if self.heard:
            await self.up.wait()
