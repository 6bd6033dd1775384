"""The conformance kit: drives a loudspeaker node (ours or a manufacturer's) through the broker,
playing the controller's part, and grades what it does against docs/protocol.md.

It speaks only the wire contract (`protocol`), like the node it tests: a manufacturer's node and
ours are graded by the same checks. `radio conformance` is its command line.
"""

from conformance.checks import CHECKS, Check
from conformance.kit import Kit, KitSettings
from conformance.nodes import CommandNode, NodeUnderTest
from conformance.report import CheckResult, Report
from conformance.run import run_conformance

__all__ = [
    "CHECKS",
    "Check",
    "CheckResult",
    "CommandNode",
    "Kit",
    "KitSettings",
    "NodeUnderTest",
    "Report",
    "run_conformance",
]
