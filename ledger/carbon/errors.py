"""Named failures of the carbon registry; each renders as problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import Conflict, Forbidden, NotFound, ValidationFailed


class ProjectNotFound(NotFound):
    code, title = "carbon-project-not-found", "Unknown carbon project"


class ReportNotFound(NotFound):
    code, title = "carbon-report-not-found", "Unknown monitoring report"


class BatchNotFound(NotFound):
    code, title = "carbon-batch-not-found", "Unknown carbon batch"


class RetirementNotFound(NotFound):
    code, title = "carbon-retirement-not-found", "Unknown retirement certificate"


class CarbonAccountNotFound(NotFound):
    code, title = "carbon-account-not-found", "Unknown carbon account"


class ParameterSetNotFound(NotFound):
    code, title = "carbon-parameter-set-not-found", "Unknown parameter set"


class ProjectExists(Conflict):
    code, title = "carbon-project-exists", "A project with this code exists"


class ParameterSetExists(Conflict):
    code, title = "carbon-parameter-set-exists", "A parameter set with this version exists"


class ParameterSetPublished(Conflict):
    code, title = "carbon-parameter-set-published", "A published parameter set is immutable"


class IllegalTransition(Conflict):
    code, title = "illegal-transition", "Transition not allowed from this state"


class ProjectLocked(Conflict):
    code, title = "carbon-project-locked", "The project cannot be changed in this state"


class FourEyesViolation(Forbidden):
    code, title = "four-eyes", "The creator may not approve their own work"


class ParcelNotEligible(ValidationFailed):
    code, title = "parcel-not-eligible", "Parcel not eligible for this project"


class SpeciesWithoutParameters(ValidationFailed):
    code, title = "species-without-parameters", "Species without parameters"


class TreeCapExceeded(ValidationFailed):
    code, title = "tree-cap-exceeded", "More trees than the single-tree rules allow"


class PeriodOverlap(Conflict):
    code, title = "period-overlap", "The period overlaps an already reported period"


class MonitoringDataMissing(ValidationFailed):
    code, title = "monitoring-data-missing", "Monitoring data missing for the period"


class ReportNotVerified(Conflict):
    code, title = "report-not-verified", "The monitoring report is not verified"


class AlreadyIssued(Conflict):
    code, title = "already-issued", "Credits were already issued on this report"


class NothingToIssue(Conflict):
    code, title = "nothing-to-issue", "The report supports no whole tonne of credits"


class RegistryNotConfigured(Conflict):
    code, title = "registry-not-configured", "The registry has no operator party"


class InvalidSerial(ValidationFailed):
    code, title = "invalid-serial", "Malformed serial block"


class SerialsNotHeld(Conflict):
    code, title = "serials-not-held", "The account does not hold these serial numbers"


class NotTradable(Conflict):
    code, title = "not-tradable", "Buffered, retired or cancelled credits cannot move"


class AlreadyRetired(Conflict):
    code, title = "already-retired", "These credits are already retired"


class InsufficientCredits(Conflict):
    code, title = "insufficient-credits", "The account holds fewer credits"


class BufferExhausted(Conflict):
    code, title = "buffer-exhausted", "The buffer pool holds fewer credits than were lost"


class CertificateMismatch(ValidationFailed):
    code, title = "certificate-mismatch", "The certificate does not match the registry"


class InventoryRejected(ValidationFailed):
    code, title = "inventory-rejected", "The inventory file has errors"
