"""One conformance run: the kit up, the chosen checks in order, the report."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from conformance.checks import CHECKS, Check
from conformance.kit import Kit, KitSettings
from conformance.nodes import NodeUnderTest
from conformance.report import CheckFailed, CheckResult, Report

log = logging.getLogger(__name__)


def select(ids: Sequence[str] | None) -> list[Check]:
    if not ids:
        return list(CHECKS)
    known = {c.id: c for c in CHECKS}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; known: {', '.join(known)}")
    return [c for c in CHECKS if c.id in ids]


async def run_conformance(
    settings: KitSettings, node: NodeUnderTest, checks: Sequence[str] | None = None
) -> Report:
    """Run the checks (all, or those named) against the node; a failed check does not stop
    the run, but one that leaves the node unreachable fails the rest with that reason."""
    chosen = select(checks)
    report = Report(node_id=settings.node_id, broker=settings.broker_url, prefix="")
    try:
        kit = Kit(settings, node)
        report.prefix = kit.prefix
        async with kit:
            for check in chosen:
                report.results.append(await _one(kit, check))
    except CheckFailed as exc:  # the node never came online
        done = {r.id for r in report.results}
        for check in chosen:
            if check.id not in done:
                report.results.append(CheckResult(check.id, check.rule, False, exc.reason))
    return report


async def _one(kit: Kit, check: Check) -> CheckResult:
    evidence: list[str] = []
    started = time.monotonic()
    result = CheckResult(check.id, check.rule, True, evidence=evidence)
    try:
        await check.run(kit, evidence)
    except CheckFailed as exc:
        result.passed, result.reason = False, exc.reason
    except Exception as exc:  # the kit's own failure (broker gone): a failed check, said so
        log.exception("check %s", check.id)
        result.passed, result.reason = (
            False,
            f"the check could not run: {type(exc).__name__}: {exc}",
        )
    result.seconds = round(time.monotonic() - started, 2)
    log.info("%s %s %s", "PASS" if result.passed else "FAIL", check.id, result.reason)
    return result
