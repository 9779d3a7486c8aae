"""Audit trail: `record` a change inside the transaction that makes it; `verify_chain` checks it."""

from ecovalue.audit.services import (
    APPEND_CALL,
    ChainReport,
    Change,
    Checkpoint,
    append_arguments,
    chain_rows,
    checkpoint,
    record,
    record_many,
    snapshot,
    to_jsonable,
    verify_chain,
)

__all__ = [
    "APPEND_CALL",
    "ChainReport",
    "Change",
    "Checkpoint",
    "append_arguments",
    "chain_rows",
    "checkpoint",
    "record",
    "record_many",
    "snapshot",
    "to_jsonable",
    "verify_chain",
]
