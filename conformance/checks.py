"""The rules a node is graded on, one check each, in the order they run (docs/protocol.md,
"Conformance").

A check plays the controller through the kit and waits for evidence, each wait bounded by the
kit's timeout. What a node must NOT do is proven with a barrier instead of a pause: a command
sent after the bad message is answered only once the bad message has been handled, and a new
timeline version is reported only after every report the node made before it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conformance.check_common import Evidence
from conformance.checks_delivery import (
    alert_preempts_and_resumes,
    finished_alert_after_restart,
    firmware_checks_hash,
    ignores_ended_items,
    media_hash,
    media_with_token,
    timeline_in_order,
)
from conformance.checks_reports import (
    answers_commands,
    no_event_arrays_unless_read,
    reports_follow_contract,
    reports_held_while_controller_away,
    reports_sent_once,
)
from conformance.checks_trust import (
    refuses_expired,
    refuses_forged,
    refuses_replayed,
    refuses_unsigned,
    refuses_wrong_area,
)
from conformance.kit import Kit


@dataclass(frozen=True)
class Check:
    id: str
    rule: str
    run: Callable[[Kit, Evidence], Awaitable[None]]


CHECKS: list[Check] = [
    Check("timeline_in_order", "applies a timeline and reports it in order", timeline_in_order),
    Check(
        "ignores_ended_items",
        "neither plays nor reports an item listed after its end",
        ignores_ended_items,
    ),
    Check("media_with_token", "downloads media with its media token", media_with_token),
    Check("media_hash", "refuses media whose SHA-256 does not match", media_hash),
    Check("refuses_unsigned", "refuses unsigned messages", refuses_unsigned),
    Check("refuses_forged", "refuses forged messages", refuses_forged),
    Check("refuses_expired", "refuses expired messages", refuses_expired),
    Check("refuses_replayed", "refuses replayed messages", refuses_replayed),
    Check("refuses_wrong_area", "refuses alerts signed for another area", refuses_wrong_area),
    Check("answers_commands", "answers each command", answers_commands),
    Check(
        "alert_preempts_and_resumes",
        "pre-empts what plays for an alert, then goes on with its timeline",
        alert_preempts_and_resumes,
    ),
    Check(
        "finished_alert_after_restart",
        "remembers finished alerts across a restart",
        finished_alert_after_restart,
    ),
    Check(
        "reports_held_while_controller_away",
        "keeps reports while the controller is away",
        reports_held_while_controller_away,
    ),
    Check("reports_sent_once", "sends each report once", reports_sent_once),
    Check(
        "no_event_arrays_unless_read",
        "sends one event per message unless the controller's state says event_arrays",
        no_event_arrays_unless_read,
    ),
    Check(
        "firmware_checks_hash",
        "downloads a firmware image with its token and refuses one whose hash does not match",
        firmware_checks_hash,
    ),
    Check(
        "reports_follow_contract", "every report parses under the contract", reports_follow_contract
    ),
]
