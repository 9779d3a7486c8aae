"""Named failures of the catalog; each renders as application/problem+json with its own code."""

from __future__ import annotations

from ecovalue.errors import (
    Conflict,
    EcovalueError,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)


class RegionNotFound(NotFound):
    code, title = "region-not-found", "Unknown region"


class PartyNotFound(NotFound):
    code, title = "party-not-found", "Unknown party"


class ProductNotFound(NotFound):
    code, title = "product-not-found", "Unknown product"


class MonitoringRecordNotFound(NotFound):
    code, title = "monitoring-record-not-found", "Unknown monitoring record"


class RegionExists(Conflict):
    code, title = "region-exists", "Region already exists"


class PartyExists(Conflict):
    code, title = "party-exists", "Party already registered"


class PartyInUse(Conflict):
    code, title = "party-in-use", "Party still holds products"


class ProductExists(Conflict):
    code, title = "product-exists", "Product already in the catalog"


class MonitoringRecordExists(Conflict):
    code, title = "monitoring-record-exists", "Monitoring record already exists"


class IllegalTransition(Conflict):
    code, title = "illegal-transition", "Transition not allowed in this state"


class ProductLocked(Conflict):
    code, title = "product-locked", "Product cannot be changed in this state"


class FourEyesViolation(Conflict):
    code, title = "four-eyes", "The same person may not change and verify"


class VersionMismatch(EcovalueError):
    """If-Match named a version that is no longer current (RFC 9110 412)."""

    status, code, title = 412, "version-mismatch", "The resource changed since you read it"


class InvalidIdentifier(ValidationFailed):
    code, title = "invalid-identifier", "Invalid identifier"


class ImportRejected(ValidationFailed):
    """The file has row errors; nothing was written. Every error is listed with row and column."""

    code, title = "import-rejected", "The file has errors; nothing was imported"


class MissingColumns(ValidationFailed):
    code, title = "missing-columns", "Required columns are missing"


class NotASpreadsheet(UnsupportedMediaType):
    code, title = "not-a-spreadsheet", "The file is not a CSV or XLSX spreadsheet"


class FileTooLarge(PayloadTooLarge):
    code, title = "file-too-large", "The file is larger than imports accept"


class SynonymConflict(Conflict):
    """The spelling already means another code: a synonym maps to one code only."""

    code, title = "synonym-conflict", "The term already means something else"
