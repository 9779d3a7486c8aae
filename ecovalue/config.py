"""Configuration from environment variables (12-factor); `create_app(config)` may override."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecovalue import protect

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def instance_dir() -> Path:
    return Path(os.environ.get("ECOVALUE_INSTANCE_DIR", PROJECT_ROOT / "instance"))


def _instance_key(folder: Path, variable: str, filename: str, new: Callable[[], str]) -> str:
    """A key from the environment, or a development key kept in the instance folder (created
    once, readable by its owner only). Keys live outside the database on purpose."""
    key = os.environ.get(variable)
    if key:
        return key
    path = folder / filename
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(new())
        path.chmod(0o600)
    return path.read_text().strip()


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    overrides = dict(overrides or {})
    folder = Path(overrides.pop("INSTANCE_DIR", instance_dir()))
    config: dict[str, Any] = {
        "INSTANCE_DIR": str(folder),
        "DATABASE_URL": os.environ.get(
            "ECOVALUE_DATABASE_URL", f"sqlite:///{folder / 'ecovalue.sqlite3'}"
        ),
        # Uploads (spreadsheets) are the largest bodies; everything else is far smaller.
        "MAX_CONTENT_LENGTH": int(os.environ.get("ECOVALUE_MAX_UPLOAD_BYTES", 20 * 1024 * 1024)),
        # Rasters (valuation's raster route) have their own, larger limit, and may be named by
        # a server-side path inside the folders listed here (os.pathsep-separated; none: off).
        "RASTER_MAX_UPLOAD_BYTES": int(os.environ.get("ECOVALUE_RASTER_MAX_UPLOAD_BYTES",
                                                      512 * 1024 * 1024)),
        "RASTER_PATHS": os.environ.get("ECOVALUE_RASTER_PATHS", ""),
        "LOG_LEVEL": os.environ.get("ECOVALUE_LOG_LEVEL", "INFO"),
        # Seconds a request may run before it is rolled back and answered 503 problem+json
        # (ecovalue/gunicorn_config.py sets it below gunicorn's worker timeout); unset: no budget.
        "REQUEST_BUDGET_SECONDS": float(os.environ["ECOVALUE_REQUEST_BUDGET_SECONDS"])
        if os.environ.get("ECOVALUE_REQUEST_BUDGET_SECONDS") else None,
        # flask-smorest / OpenAPI; Swagger UI 4 renders OpenAPI 3.0
        "API_TITLE": "ecovalue",
        "API_VERSION": "0.1.0",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/docs/assets/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True},
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": "/redoc/assets/redoc.standalone.js",
    }
    config.update(overrides)
    if "DATA_KEY" not in config:
        # Fernet key of personal data at rest (ID-card numbers, bank accounts)
        config["DATA_KEY"] = _instance_key(folder, "ECOVALUE_DATA_KEY", "data.key",
                                           protect.new_key)
    if "AUDIT_KEY" not in config:
        # HMAC key that signs the audit chain's checkpoints
        config["AUDIT_KEY"] = _instance_key(folder, "ECOVALUE_AUDIT_KEY", "audit.key",
                                            lambda: secrets.token_hex(32))
    return config
