"""Who may do what: the one place where roles and scopes are checked.

Every state-changing service and every non-public read calls `authorize(actor, action, ...)`
with the county or party the action touches; routes never decide permissions themselves.

Roles (DESIGN.md §3):
- `admin`: everything;
- `registrar`: scoped to one county (its 6-digit code); writes only that county's data;
- `verifier`: prefecture bureau or accredited third party; verifies products, prices, issuances;
- `trader`: scoped to one party; moves only that party's assets;
- `finance`: the prefecture finance bureau; runs payments, periods and reconciliation;
- `auditor`: reads everything, changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute

from ecovalue.errors import Forbidden, Unauthorized


class Role(StrEnum):
    ADMIN = "admin"
    REGISTRAR = "registrar"
    VERIFIER = "verifier"
    TRADER = "trader"
    FINANCE = "finance"
    AUDITOR = "auditor"


ROLES = tuple(r.value for r in Role)


class Scope(StrEnum):
    ANY = "any"  #: no further restriction
    COUNTY = "county"  #: only inside the principal's county
    PARTY = "party"  #: only on the principal's own party


@dataclasses.dataclass(frozen=True)
class Principal:
    """The authenticated caller. `label` is what the audit trail records (never the secret)."""

    role: Role
    label: str
    token_id: int | None = None
    county_code: str | None = None
    party_id: int | None = None

    @property
    def is_system(self) -> bool:
        return self.token_id is None


def system_principal(label: str = "cli") -> Principal:
    """The operator at the server's console (CLI, demo loader, migrations): acts as admin."""
    return Principal(role=Role.ADMIN, label=f"system:{label}")


A, R, V, T = Role.ADMIN, Role.REGISTRAR, Role.VERIFIER, Role.TRADER
F, U = Role.FINANCE, Role.AUDITOR
ANY, COUNTY, PARTY = Scope.ANY, Scope.COUNTY, Scope.PARTY
_READERS = {A: ANY, R: ANY, V: ANY, F: ANY, U: ANY}

#: action -> {role: scope}. A role absent from an action's entry may not perform it.
POLICY: dict[str, dict[Role, Scope]] = {
    # shell
    "token.manage": {A: ANY},
    "audit.read": {A: ANY, U: ANY},
    # catalog
    "catalog.region.write": {A: ANY, R: COUNTY},
    "catalog.region.national.write": {A: ANY},  # a prefecture/county newer than GB/T 2260's
    "catalog.vocabulary.write": {A: ANY},  # synonyms of product types, categories ...
    "catalog.party.read": {**_READERS, T: PARTY},
    "catalog.party.write": {A: ANY, R: COUNTY},
    "catalog.product.read": {**_READERS, T: ANY},
    "catalog.product.write": {A: ANY, R: COUNTY},
    "catalog.product.submit": {A: ANY, R: COUNTY},
    "catalog.product.reject": {A: ANY, V: ANY},
    "catalog.product.verify": {A: ANY, V: ANY},
    "catalog.product.suspend": {A: ANY, V: ANY},
    "catalog.product.reinstate": {A: ANY, V: ANY},
    "catalog.product.retire": {A: ANY, R: COUNTY, V: ANY},
    "catalog.monitoring.write": {A: ANY, R: COUNTY},
    # valuation
    # (indicators, published price books, indices and published runs are public: no check)
    "valuation.read": {**_READERS, T: ANY},  # draft price books
    "valuation.indicator.write": {A: ANY},
    "valuation.pricebook.write": {A: ANY, V: ANY},
    "valuation.pricebook.publish": {A: ANY, V: ANY},
    "valuation.index.write": {A: ANY, V: ANY},
    "valuation.quantities.read": {A: ANY, R: COUNTY, V: ANY, F: ANY, U: ANY},
    "valuation.quantities.write": {A: ANY, R: COUNTY, V: ANY},
    "valuation.run.read": {A: ANY, R: COUNTY, V: ANY, F: ANY, U: ANY},  # unpublished runs
    "valuation.run.create": {A: ANY, R: COUNTY, V: ANY},
    "valuation.run.publish": {A: ANY, V: ANY},
    # ledger
    "ledger.read": {A: ANY, F: ANY, U: ANY, T: PARTY},
    "ledger.asset.read": {A: ANY, R: ANY, V: ANY, T: ANY, F: ANY, U: ANY},
    "ledger.asset.write": {A: ANY, F: ANY},
    "ledger.account.write": {A: ANY, F: ANY},
    "ledger.transaction.create": {A: ANY, F: ANY, T: PARTY},
    # money (a bank or treasury receipt) enters the ledger only through finance: a posted
    # debit of an `external` account; a trader may only request it as a pending transfer,
    # which finance posts when the bank has the money (`ledger.pending.resolve`)
    "ledger.value.enter": {A: ANY, F: ANY},
    "ledger.transaction.reverse": {A: ANY, F: ANY},
    "ledger.pending.resolve": {A: ANY, F: ANY},
    "ledger.period.manage": {A: ANY, F: ANY},
    "ledger.assertion.write": {A: ANY, F: ANY},
    # carbon registry (projects, issuances, holdings and retirements are public reads)
    "carbon.read": {**_READERS, T: ANY},  # drafts, reports, inventories, traceability
    "carbon.parameters.write": {A: ANY, V: ANY},
    "carbon.parameters.publish": {A: ANY, V: ANY},
    "carbon.registry.configure": {A: ANY},
    "carbon.project.write": {A: ANY, R: COUNTY},
    "carbon.project.validate": {A: ANY, V: ANY},
    "carbon.project.reject": {A: ANY, V: ANY},
    "carbon.project.register": {A: ANY, V: ANY},
    "carbon.project.activate": {A: ANY, V: ANY},
    "carbon.project.close": {A: ANY, V: ANY},
    "carbon.project.withdraw": {A: ANY, R: COUNTY},
    "carbon.report.create": {A: ANY, R: COUNTY},
    "carbon.report.verify": {A: ANY, V: ANY},
    "carbon.report.reject": {A: ANY, V: ANY},
    "carbon.issuance.create": {A: ANY, V: ANY},
    "carbon.account.open": {A: ANY, V: ANY, T: ANY},  # a recipient's account, when moving
    "carbon.transfer.create": {A: ANY, T: PARTY},
    "carbon.retirement.create": {A: ANY, T: PARTY},
    "carbon.cancellation.create": {A: ANY, V: ANY, T: PARTY},
    "carbon.reversal.create": {A: ANY, V: ANY},
    # thermal-power CO2 pilot (factor tables and rules are public reads)
    "pilot.read": {A: ANY, V: ANY, F: ANY, U: ANY, T: PARTY},  # reports, obligations
    "pilot.factors.write": {A: ANY},
    "pilot.rule.write": {A: ANY, F: ANY},
    "pilot.report.file": {A: ANY, T: PARTY},
    "pilot.report.verify": {A: ANY, V: ANY},
    "pilot.report.reject": {A: ANY, V: ANY},
    "pilot.obligation.settle": {A: ANY, T: PARTY},
    "pilot.fund.read": {A: ANY, F: ANY, U: ANY},
    # ecological compensation (agreements, assessments, settlements)
    "compensation.read": {**_READERS, T: ANY},
    "compensation.section.write": {A: ANY, V: ANY, F: ANY},
    "compensation.agreement.write": {A: ANY, F: ANY},
    "compensation.agreement.activate": {A: ANY, F: ANY},
    "compensation.assessment.write": {A: ANY, V: ANY, F: ANY},
    "compensation.settlement.prepare": {A: ANY, F: ANY},
    # approval posts the payments (value may enter from a payer's treasury account); the
    # preparer of a settlement never approves it (checked by the service)
    "compensation.settlement.approve": {A: ANY, F: ANY},
    # reconciliation (finance bureau): sign-off is finance's alone, by someone other than
    # the run's preparer (checked by the service)
    "reconcile.read": {A: ANY, F: ANY, U: ANY},
    "reconcile.mapping.write": {A: ANY, F: ANY},
    "reconcile.rules.write": {A: ANY, F: ANY},
    "reconcile.statement.import": {A: ANY, F: ANY},
    "reconcile.run.create": {A: ANY, F: ANY},
    "reconcile.run.decide": {A: ANY, F: ANY},
    "reconcile.run.signoff": {F: ANY},
    "reconcile.period.close": {A: ANY, F: ANY},
    "reconcile.report.read": {A: ANY, F: ANY, U: ANY},
    # benefit sharing (aggregate traceability is public: no check)
    "sharing.read": dict(_READERS),  # register (masked), rules, runs, statements
    "sharing.register.write": {A: ANY, R: COUNTY},
    # the CNY accounts of collectives and households, opened by the register (which checked
    # the county already) and by runs
    "sharing.account.open": {A: ANY, R: ANY, F: ANY},
    "sharing.rule.write": {A: ANY, F: ANY},
    "sharing.fund.write": {A: ANY, F: ANY},
    "sharing.programme.write": {A: ANY, F: ANY},
    "sharing.run.prepare": {A: ANY, R: COUNTY, F: ANY},
    "sharing.run.approve": {A: ANY, F: ANY},  # never the preparer (four eyes)
    "sharing.run.cancel": {A: ANY, F: ANY},
    "sharing.run.reverse": {A: ANY, F: ANY},  # 红字冲销; never the preparer (four eyes)
    # the one file with whole bank account numbers: the finance bureau only, audited
    "sharing.payment_file.download": {F: ANY},
    "sharing.purchase.create": {A: ANY, F: ANY, T: PARTY},  # a buyer pays from its account
    "sharing.trace.read": {A: ANY, F: ANY, U: ANY, T: PARTY},  # a plant: its own payments
    # offset market (book, trades and daily prices are public reads; traders act for their
    # own party only: a listing, take, bid, block trade or auction is checked with the party)
    "market.read": {**_READERS, T: ANY},  # listings, feed (parties shown to themselves only)
    # who the parties of a listing, trade or event are: themselves and the unscoped overseers
    "market.party.read": {A: ANY, F: ANY, U: ANY, T: PARTY},
    "market.settings.write": {A: ANY},
    "market.listing.create": {A: ANY, T: PARTY},
    "market.listing.take": {A: ANY, T: PARTY},
    "market.listing.cancel": {A: ANY, T: PARTY},
    "market.listing.expire": {A: ANY, F: ANY},
    "market.block.propose": {A: ANY, T: PARTY},
    "market.block.confirm": {A: ANY, T: PARTY},
    "market.auction.create": {A: ANY, T: PARTY},
    "market.auction.bid": {A: ANY, T: PARTY},
    "market.auction.close": {A: ANY, F: ANY, T: PARTY},
    # the market as clearing house: the accounts a trade needs are opened, and its escrow and
    # settlement legs posted, under these, only by ledger.market's services after they have
    # checked the caller's own action above (a trader never posts under them directly)
    "market.account.open": {A: ANY, F: ANY, T: ANY},
    "market.settlement.post": {A: ANY, F: ANY, T: ANY},
}


def county_of(region_code: str) -> str:
    """The 6-digit county code of a region code: GB/T 2260 county codes and the 9-/12-digit
    statistical codes below them share their first six digits. A prefecture code (`xx xx 00`)
    is returned as is and belongs to no county."""
    return str(region_code)[:6]


def allowed_roles(action: str) -> dict[Role, Scope]:
    try:
        return POLICY[action]
    except KeyError:  # a typo in an action name must fail loudly in tests, not open a door
        raise LookupError(f"unknown action {action!r}") from None


def authorize(
    actor: Principal | None,
    action: str,
    *,
    county: str | Iterable[str] | None = None,
    party: int | Iterable[int] | None = None,
) -> Principal:
    """Check that `actor` may perform `action` on data of `county` (region codes accepted) and/or
    `party` (party ids). Raises Unauthorized without an actor, Forbidden otherwise; returns the
    actor so that callers can chain."""
    rules = allowed_roles(action)
    if actor is None:
        raise Unauthorized()
    scope = rules.get(actor.role)
    if scope is None:
        raise Forbidden(f"role {actor.role} may not perform {action}", action=action)
    if scope is Scope.COUNTY:
        counties = {county} if isinstance(county, str) else set(county or ())
        mine = actor.county_code
        if not counties or not mine or any(county_of(c) != mine for c in counties):
            raise Forbidden(
                f"a registrar of county {mine} may not perform {action} outside that county",
                action=action,
            )
    elif scope is Scope.PARTY:
        parties = {party} if isinstance(party, int) else set(party or ())
        if not parties or actor.party_id is None or parties != {actor.party_id}:
            raise Forbidden(
                f"a trader may perform {action} only on its own party's data", action=action
            )
    return actor


#: a query's column as `RowFilter.condition` takes it: a Core column or a model attribute
_Column = sa.ColumnElement[Any] | QueryableAttribute[Any]


@dataclasses.dataclass(frozen=True)
class RowFilter:
    """The rows of an action that a caller reaches: every row, one county's, one party's, or
    none. Services filter their queries with it instead of comparing roles themselves."""

    everything: bool = False
    #: only rows of this county (6-digit code; region codes below it share the prefix)
    county: str | None = None
    #: only rows of this party
    party: int | None = None

    @property
    def nothing(self) -> bool:
        return not self.everything and self.county is None and self.party is None

    def condition(self, *, county: _Column | None = None,
                  party: _Column | None = None) -> sa.ColumnElement[bool]:
        """The SQL condition on a query's rows that this filter lets through: `county` is the
        rows' region-code column (codes below a county start with its code), `party` their
        party-id column. A scope without its column lets nothing through, as does `nothing`."""
        if self.everything:
            return sa.true()
        if self.county is not None and county is not None:
            return county.startswith(self.county, autoescape=True)
        if self.party is not None and party is not None:
            return party == self.party
        return sa.false()


def row_filter(actor: Principal | None, action: str) -> RowFilter:
    """Which rows of `action` `actor` may read or write, from the policy table: `everything`
    for an unscoped role, the principal's county or party for a scoped one, `nothing` for a
    role the action does not list (or no actor at all)."""
    rules = allowed_roles(action)
    scope = rules.get(actor.role) if actor is not None else None
    if actor is None or scope is None:
        return RowFilter()
    if scope is Scope.COUNTY:
        return RowFilter(county=actor.county_code) if actor.county_code else RowFilter()
    if scope is Scope.PARTY:
        return RowFilter(party=actor.party_id) if actor.party_id is not None else RowFilter()
    return RowFilter(everything=True)


def can(actor: Principal | None, action: str, *,
        county: str | Iterable[str] | None = None,
        party: int | Iterable[int] | None = None) -> bool:
    """`authorize` as a predicate, for filtering what a caller may see."""
    try:
        authorize(actor, action, county=county, party=party)
    except (Forbidden, Unauthorized):
        return False
    return True
