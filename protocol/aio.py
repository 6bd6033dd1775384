"""Asyncio cancellation that survives Python 3.11 asyncio.wait_for swallowing a cancel request
(shared by the controller and the node software, both of which await aiomqtt)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that an awaited library call swallowed.

    On Python 3.11 asyncio.wait_for (used inside aiomqtt) can drop a cancel that arrives as
    the awaited operation completes; the task still counts the request, so check it.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]]) -> None:
    """Cancel tasks and wait until they end, cancelling again any that swallowed it."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.2)
