"""HTTP routes of the catalog (to be written)."""

from ecovalue.api import Blueprint

blp = Blueprint("catalog", __name__, url_prefix="/catalog", description="Ecological product catalog")
