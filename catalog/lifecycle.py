"""The product lifecycle as data: states, transitions, and the action each transition needs.

    draft ──submit──> registered ──verify──> verified ──suspend──> suspended
      ^                   │                     ^                      │
      └──────reject───────┘                     └──────reinstate───────┘
    draft / registered / verified / suspended ──retire──> retired (terminal)

Editing is not a transition: draft, registered and verified products may be edited; an edit of
an *attested* field (what a verifier checked: type, place, holder, right, area, quantity) sends a
verified product back to registered, so that it is verified again. Suspended and retired products
are locked.

Who may perform a transition is decided by `ecovalue.auth.authorize(actor, transition.action,
county=...)`; this module only names the action.
"""

from __future__ import annotations

import dataclasses

STATES = ("draft", "registered", "verified", "suspended", "retired")
EDITABLE_STATES = frozenset({"draft", "registered", "verified"})

#: fields whose change invalidates a verification
ATTESTED_FIELDS = frozenset({
    "type_code", "region_code", "holder_party_id", "rights_type", "area_ha", "latitude",
    "longitude", "grid_cell_id", "quantity", "quantity_unit", "name_zh",
})


@dataclasses.dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str
    action: str  #: the POLICY action `authorize` checks
    reason_required: bool
    description: str


TRANSITIONS: dict[str, Transition] = {t.name: t for t in (
    Transition("submit", frozenset({"draft"}), "registered", "catalog.product.submit", False,
               "the county registers the product in its catalog"),
    Transition("reject", frozenset({"registered"}), "draft", "catalog.product.reject", True,
               "the verifier sends it back for correction"),
    Transition("verify", frozenset({"registered"}), "verified", "catalog.product.verify", False,
               "the verifier attests the registered data"),
    Transition("suspend", frozenset({"verified"}), "suspended", "catalog.product.suspend", True,
               "e.g. disputed rights or ecological damage; not offered while suspended"),
    Transition("reinstate", frozenset({"suspended"}), "verified", "catalog.product.reinstate",
               False, "the reason for suspension is resolved"),
    Transition("retire", frozenset({"draft", "registered", "verified", "suspended"}), "retired",
               "catalog.product.retire", True, "the product no longer exists or was entered "
               "in error; kept with its history"),
)}


def next_state(state: str, transition: str) -> str | None:
    """The state after `transition` from `state`, None if not allowed there."""
    rule = TRANSITIONS[transition]
    return rule.target if state in rule.sources else None


def reverification_needed(status: str, changed_fields: set[str]) -> bool:
    return status == "verified" and bool(changed_fields & ATTESTED_FIELDS)
