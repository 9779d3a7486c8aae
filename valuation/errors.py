"""Named failures of GEP valuation (rendered as problem+json by ecovalue.errors)."""

from __future__ import annotations

from ecovalue.errors import Conflict, NotFound, UnsupportedMediaType, ValidationFailed


class IndicatorNotFound(NotFound):
    code, title = "indicator-not-found", "Indicator not found"


class IndicatorDefinitionInvalid(ValidationFailed):
    code, title = "indicator-definition-invalid", "Invalid indicator definition"


class IndicatorExists(Conflict):
    code, title = "indicator-exists", "Indicator code already in use"


class PriceBookNotFound(NotFound):
    code, title = "price-book-not-found", "Price book not found"


class PriceBookExists(Conflict):
    code, title = "price-book-exists", "Price book version already exists"


class PriceBookPublished(Conflict):
    code, title = "price-book-published", "A published price book cannot change"


class PriceBookNotPublished(Conflict):
    code, title = "price-book-not-published", "Only a published price book can be used"


class PriceEntryInvalid(ValidationFailed):
    code, title = "price-entry-invalid", "Invalid price-book entry"


class PriceIndexInvalid(ValidationFailed):
    code, title = "price-index-invalid", "Invalid price index"


class PriceIndexSeriesNotFound(NotFound):
    code, title = "price-index-series-not-found", "Price-index series not found"


class QuantitiesInvalid(ValidationFailed):
    """Rows of a quantity table that cannot be used; every bad row is listed."""

    code, title = "quantities-invalid", "Invalid quantities"


class QuantitySetNotFound(NotFound):
    code, title = "quantity-set-not-found", "Quantity set not found"


class GridInvalid(ValidationFailed):
    code, title = "grid-invalid", "Invalid grid input"


class UnsupportedFile(UnsupportedMediaType):
    code, title = "unsupported-file", "Unsupported file"


class RunNotFound(NotFound):
    code, title = "run-not-found", "Valuation run not found"


class RunOptionsInvalid(ValidationFailed):
    code, title = "run-options-invalid", "Invalid valuation options"


class DoubleCounting(Conflict):
    """Two enabled indicators count the same service twice and no option accepts it."""

    code, title = "double-counting", "Indicators would double count"


class RunAlreadyPublished(Conflict):
    code, title = "run-already-published", "Run already published"


class RunsNotComparable(ValidationFailed):
    code, title = "runs-not-comparable", "Runs cannot be compared"


class AssetValueInvalid(ValidationFailed):
    code, title = "asset-value-invalid", "Invalid asset-value inputs"


class ProductNotValuable(ValidationFailed):
    code, title = "product-not-valuable", "Product cannot be valued"
