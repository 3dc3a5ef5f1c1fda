"""The request ledger: one row per request, in SQLite (default) or PostgreSQL, behind ``LedgerStore``.

Only this package writes SQL: ``store`` (rows), ``queries`` (aggregates), ``thresholds_store`` (persisted
thresholds), ``schema`` and ``migrations`` (the tables); ``spool`` keeps rows through a database outage.
"""

from router.ledger.interface import LedgerStore
from router.ledger.row import ENERGY_COLUMNS, LedgerRow

__all__ = ["ENERGY_COLUMNS", "LedgerRow", "LedgerStore"]
