"""Small helpers shared by the catalog services."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ecovalue.db import INT64_MAX

T = TypeVar("T")


def fetch(session: Session, model: type[T], key: Any) -> T | None:
    """`session.get` that answers None for ids no row can have (negative or beyond BIGINT)."""
    if isinstance(key, int) and not 0 < key <= INT64_MAX:
        return None
    return session.get(model, key)
