"""The request ledger: one row per request, in SQLite (default) or PostgreSQL."""

from router.ledger.row import LedgerRow

__all__ = ["LedgerRow"]
