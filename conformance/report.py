"""What a conformance run found: each check passed or failed, with its evidence."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


class CheckFailed(Exception):
    """A check's verdict: the rule is broken; `reason` says how, in one sentence."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass
class CheckResult:
    id: str
    rule: str
    passed: bool
    reason: str = ""
    evidence: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Report:
    node_id: str
    broker: str
    prefix: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.id for r in self.results if not r.passed]

    def result(self, check_id: str) -> CheckResult:
        return next(r for r in self.results if r.id == check_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "broker": self.broker,
            "topic_prefix": self.prefix,
            "passed": self.passed,
            "failed": self.failed,
            "checks": [asdict(r) for r in self.results],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2)

    def text(self) -> str:
        lines = [f"Conformance of node {self.node_id} (broker {self.broker}, prefix {self.prefix})"]
        for r in self.results:
            verdict = "PASS" if r.passed else "FAIL"
            lines.append(f"{verdict} {r.id}: {r.rule} ({r.seconds:.1f} s)")
            if not r.passed:
                lines.append(f"     reason: {r.reason}")
            lines += [f"     - {e}" for e in r.evidence]
        passed = sum(r.passed for r in self.results)
        lines.append(
            f"{len(self.results)} checks: {passed} passed, {len(self.results) - passed} failed"
        )
        return "\n".join(lines)
