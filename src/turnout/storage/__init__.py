"""Storage: the ledger, API keys and shared counters behind small protocols.

See :mod:`turnout.storage.base` for the protocols and a note on how the gateway calls them.
"""

from __future__ import annotations

from turnout.storage.base import (
    Attempt,
    Counters,
    KeyRecord,
    KeySpec,
    KeyStore,
    Ledger,
    LedgerReader,
    LedgerRow,
    Limits,
    Reservation,
)

__all__ = [
    "Attempt",
    "Counters",
    "KeyRecord",
    "KeySpec",
    "KeyStore",
    "Ledger",
    "LedgerReader",
    "LedgerRow",
    "Limits",
    "Reservation",
]
