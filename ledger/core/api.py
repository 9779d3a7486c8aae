"""HTTP routes of this package (to be written)."""

from ecovalue.api import Blueprint

blp = Blueprint("core", __name__, url_prefix="/ledger", description="(to be written)")
