"""report.py's parts: runs (reading), tables, figures, gallery (HTML)."""
