"""The project lifecycle as data: states, transitions and the policy action of each.

    draft ──validate──> validated ──register──> registered ──activate──> active ──close──> closed
      │                    │                        │
      └──reject──> rejected <┘                      │
    draft / validated / registered ──withdraw──> withdrawn

Validation is a verifier's attestation of the design (not by the project's creator); the
registry registers a validated project; activation starts crediting. Monitoring reports are
filed, verified and issued on registered and active projects. Rejected, withdrawn and closed
are terminal: their parcels are free for another project.
"""

from __future__ import annotations

import dataclasses

STATES = ("draft", "validated", "registered", "active", "closed", "rejected", "withdrawn")
EDITABLE_STATES = frozenset({"draft"})
#: states in which a project holds its parcels (another project may not cover them)
HOLDING_STATES = frozenset({"draft", "validated", "registered", "active"})
#: states in which monitoring reports are filed, verified and issued
CREDITING_STATES = frozenset({"registered", "active"})


@dataclasses.dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str
    action: str  #: the POLICY action `authorize` checks
    reason_required: bool
    four_eyes: bool  #: the project's creator may not perform it


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    Transition("validate", frozenset({"draft"}), "validated", "carbon.project.validate",
               False, True),
    Transition("reject", frozenset({"draft", "validated"}), "rejected", "carbon.project.reject",
               True, False),
    Transition("register", frozenset({"validated"}), "registered", "carbon.project.register",
               False, True),
    Transition("activate", frozenset({"registered"}), "active", "carbon.project.activate",
               False, False),
    Transition("close", frozenset({"active"}), "closed", "carbon.project.close", True, False),
    Transition("withdraw", frozenset({"draft", "validated", "registered"}), "withdrawn",
               "carbon.project.withdraw", True, False),
)}


def next_state(state: str, transition: str) -> str | None:
    """The state after `transition` from `state`, None if not allowed there."""
    rule = TRANSITIONS[transition]
    return rule.target if state in rule.sources else None
