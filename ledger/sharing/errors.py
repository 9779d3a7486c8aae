"""Named failures of benefit sharing; each renders as problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class RuleNotFound(NotFound):
    code, title = "sharing-rule-not-found", "Unknown sharing rule"


class RunNotFound(NotFound):
    code, title = "sharing-run-not-found", "Unknown distribution run"


class FundNotFound(NotFound):
    code, title = "sharing-fund-not-found", "Unknown sharing fund"


class ProgrammeNotFound(NotFound):
    code, title = "sharing-programme-not-found", "Unknown single-tree programme"


class NotInRegister(NotFound):
    code, title = "sharing-not-in-register", "Not in the villager register"


class InflowNotFound(NotFound):
    code, title = "sharing-inflow-not-found", "No payment into a sharing fund"


class InvalidRule(ValidationFailed):
    code, title = "sharing-invalid-rule", "Invalid benefit-sharing rule"


class InvalidRegisterEntry(ValidationFailed):
    code, title = "sharing-invalid-register-entry", "Invalid villager register entry"


class UnknownHousehold(ValidationFailed):
    code, title = "sharing-unknown-household", "Unknown household"


class RecordDateBeforeJoining(ValidationFailed):
    code, title = "sharing-record-date-before-joining", \
        "Record date before the household joined"


class NothingToShare(ValidationFailed):
    code, title = "sharing-nothing-to-share", "Nothing to share the amount by"


class InvalidAmount(ValidationFailed):
    code, title = "sharing-invalid-amount", "Invalid amount"


class FundInsufficient(Conflict):
    code, title = "sharing-fund-insufficient", "The fund does not hold the amount"


class RuleVersionUsed(Conflict):
    code, title = "sharing-rule-version-used", "A rule version is immutable once used"


class RegisterLocked(Conflict):
    code, title = "sharing-register-locked", \
        "The register is fixed up to the record date of a paid run"


class ReferenceTaken(Conflict):
    code, title = "sharing-reference-taken", "A run with this reference exists"


class RuleExists(Conflict):
    code, title = "sharing-rule-exists", "A rule with this code exists"


class FundExists(Conflict):
    code, title = "sharing-fund-exists", "This account is already a sharing fund"


class ProgrammeExists(Conflict):
    code, title = "sharing-programme-exists", "A programme with this code exists"


class RunNotPrepared(Conflict):
    code, title = "sharing-run-not-prepared", "The run is not waiting for approval"


class RunNotReversible(Conflict):
    code, title = "sharing-run-not-reversible", "Only a paid distribution can be reversed"


class OwnRunReversal(Forbidden):
    code, title = "four-eyes", "The preparer may not reverse their own distribution"


class FourEyesViolation(Forbidden):
    code, title = "four-eyes", "The preparer may not approve their own distribution"
