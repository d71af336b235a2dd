"""Stepwise: a real-time bedside dashboard for rapid drug desensitization."""

__version__ = "0.1.0"
