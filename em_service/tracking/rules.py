"""The rule stage: where a valid reading is evaluated against its wearer's conditions.

PLACEHOLDER in this release: :class:`NoRules` accepts every reading and raises no alert. The zone,
curfew, silence, alcohol and device rules arrive with the streaming-rules work (issue 4); they
will implement :class:`RuleStage` and be wired in ``tracking.agents``.
"""

from __future__ import annotations

from typing import Protocol

from em_service.contracts import Alert, Reading


class RuleStage(Protocol):
    """Evaluate one reading; return the alerts it raises."""

    async def evaluate(self, reading: Reading) -> list[Alert]: ...


class NoRules:
    """The placeholder stage: counts nothing, alerts nothing. Not a rule engine."""

    async def evaluate(self, reading: Reading) -> list[Alert]:
        return []
