"""The admin layer: live thresholds shared through the ledger database, calibration, dashboard and reports.

Every ``/admin`` route needs the admin key (``router.auth.KeyChecker.admin``); see docs/ADMIN.md.
"""
