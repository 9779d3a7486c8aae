"""Authentication (opaque bearer tokens) and authorization (roles and scopes, in `policy`)."""

from ecovalue.auth.policy import (
    POLICY,
    ROLES,
    Principal,
    Role,
    RowFilter,
    Scope,
    authorize,
    can,
    county_of,
    row_filter,
    system_principal,
)

__all__ = [
    "POLICY",
    "ROLES",
    "Principal",
    "Role",
    "RowFilter",
    "Scope",
    "authorize",
    "can",
    "county_of",
    "row_filter",
    "system_principal",
]
