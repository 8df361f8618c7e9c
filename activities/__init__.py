"""Temporal activities: every side effect of a DAG run lives here."""
