"""Read-only reporting over sync history and platform calls (SQL aggregates)."""
