"""Small helpers shared by the catalog services."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")

#: the largest id a BIGINT column holds; larger numbers name nothing (and would overflow the
#: database driver)
MAX_ID = 2**63 - 1


def fetch(session: Session, model: type[T], key: Any) -> T | None:
    """`session.get` that answers None for ids no row can have (negative or beyond BIGINT)."""
    if isinstance(key, int) and not 0 < key <= MAX_ID:
        return None
    return session.get(model, key)
