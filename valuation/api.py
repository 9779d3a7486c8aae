"""HTTP routes of this package (to be written)."""

from ecovalue.api import Blueprint

blp = Blueprint("valuation", __name__, url_prefix="/valuation", description="(to be written)")
