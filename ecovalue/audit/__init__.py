"""Audit trail: `record` a change inside the transaction that makes it; `verify_chain` checks it."""

from ecovalue.audit.services import (
    ChainReport,
    Change,
    Checkpoint,
    checkpoint,
    record,
    record_many,
    snapshot,
    to_jsonable,
    verify_chain,
)

__all__ = [
    "ChainReport",
    "Change",
    "Checkpoint",
    "checkpoint",
    "record",
    "record_many",
    "snapshot",
    "to_jsonable",
    "verify_chain",
]
