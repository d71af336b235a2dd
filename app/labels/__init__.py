"""Bag labels: their codes, their print pages, and the scans that check a bag or a patient
against them."""
