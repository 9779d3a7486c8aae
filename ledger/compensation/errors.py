"""Named failures of ecological compensation; each renders as problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class SectionNotFound(NotFound):
    code, title = "compensation-section-not-found", "Unknown assessed section"


class AgreementNotFound(NotFound):
    code, title = "compensation-agreement-not-found", "Unknown compensation agreement"


class SettlementNotFound(NotFound):
    code, title = "compensation-settlement-not-found", "Unknown settlement"


class SectionExists(Conflict):
    code, title = "compensation-section-exists", "A section with this code exists"


class AgreementExists(Conflict):
    code, title = "compensation-agreement-exists", "An agreement with this code exists"


class AgreementInForce(Conflict):
    code, title = "compensation-agreement-in-force", ("An agreement version in force is "
                                                       "immutable")


class AgreementNotDraft(Conflict):
    code, title = "compensation-agreement-not-draft", "Only a draft version can change this way"


class DraftExists(Conflict):
    code, title = "compensation-draft-exists", "The agreement already has a draft version"


class NoAgreementInForce(Conflict):
    code, title = "compensation-no-agreement-in-force", "No version of the agreement is in force"


class InvalidTerms(ValidationFailed):
    code, title = "compensation-invalid-terms", "Invalid agreement terms"


class InvalidAssessment(ValidationFailed):
    code, title = "compensation-invalid-assessment", "Invalid monitored values"


class MissingAssessments(ValidationFailed):
    code, title = "compensation-missing-assessments", ("Monitored values missing for the "
                                                        "period (missing is not zero)")


class PeriodNotInAgreement(ValidationFailed):
    code, title = "compensation-period-not-in-agreement", "The agreement has no such period"


class SettlementNotPrepared(Conflict):
    code, title = "compensation-settlement-not-prepared", ("The settlement was already approved "
                                                            "or rejected")


class OwnSettlement(Forbidden):
    code, title = "compensation-own-settlement", ("The preparer of a settlement may not "
                                                   "approve it")


class GepRunUnavailable(ValidationFailed):
    code, title = "compensation-gep-run-unavailable", ("No published valuation run gives the "
                                                        "GEP change")
