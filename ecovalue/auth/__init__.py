"""Authentication (opaque bearer tokens) and authorization (roles and scopes, in `policy`)."""

from ecovalue.auth.policy import (
    POLICY,
    ROLES,
    Principal,
    Role,
    Scope,
    authorize,
    can,
    county_of,
    system_principal,
)

__all__ = [
    "POLICY",
    "ROLES",
    "Principal",
    "Role",
    "Scope",
    "authorize",
    "can",
    "county_of",
    "system_principal",
]
