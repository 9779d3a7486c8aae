"""Named failures of the thermal-power pilot; each renders as problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class FactorTableNotFound(NotFound):
    code, title = "pilot-factor-table-not-found", "Unknown emission-factor table version"


class FactorTableExists(Conflict):
    code, title = "pilot-factor-table-exists", "A factor table with this version exists"


class InvalidFactorTable(ValidationFailed):
    code, title = "pilot-invalid-factor-table", "Invalid emission-factor table"


class RuleNotFound(NotFound):
    code, title = "pilot-rule-not-found", "No pilot rule for this year"


class RuleInUse(Conflict):
    code, title = "pilot-rule-in-use", "The year's rule already fixed obligations"


class ReportNotFound(NotFound):
    code, title = "pilot-report-not-found", "Unknown emission report"


class InvalidReport(ValidationFailed):
    code, title = "pilot-invalid-report", "Invalid emission report"


class ReportExists(Conflict):
    code, title = "pilot-report-exists", "The plant has a live report for this year"


class ReportNotFiled(Conflict):
    code, title = "pilot-report-not-filed", "Only a filed report is verified or rejected"


class FourEyesViolation(Forbidden):
    code, title = "four-eyes", "The filer may not verify their own report"


class NotAPlant(ValidationFailed):
    code, title = "pilot-not-a-plant", "The party is not an enterprise that can file"


class ObligationNotFound(NotFound):
    code, title = "pilot-obligation-not-found", "Unknown pilot obligation"


class NotYourObligation(Forbidden):
    code, title = "pilot-not-your-obligation", "The obligation is another plant's"


class IneligibleCredits(ValidationFailed):
    code, title = "pilot-ineligible-credits", "Credits not eligible for this obligation"


class OverSettlement(Conflict):
    code, title = "pilot-over-settlement", "More than the obligation's open tonnes"


class NoMoneyAccount(ValidationFailed):
    code, title = "pilot-no-money-account", "The plant has no CNY account to pay from"
