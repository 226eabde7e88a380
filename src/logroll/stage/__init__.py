"""Stage: one file version (CSV or JSON lines) -> typed parts per event day + a quarantine.

    reader.py      hostile input -> records DuckDB reads exactly, and an independent count of them
    csv.py         a CSV file version: header, one-pass typed staging, accounting check
    jsonl.py       a JSON-lines file version
    quarantine.py  the rejected rows' file (source_file, line, reason, raw_line)
    staged.py      what staging hands back (Staged) and where parts go

Rows are never dropped silently: every record read is valid (in a part), rejected (in the
quarantine, with its line and reason), or counted as header, skipped or blank.
"""
