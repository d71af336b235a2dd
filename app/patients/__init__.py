"""Patients: who is in the chair. rules.py (pure checks, ``age_in_years``), models.py,
schemas.py, service.py (one transaction per change, with its audit row) and router.py (the
JSON API under /api/v1/patients)."""
