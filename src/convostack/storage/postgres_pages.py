"""Cursor pages on PostgreSQL: one statement that reads one owner's rows of a table in
`pos` order after the row the cursor names, and says whether that row was found."""

from __future__ import annotations

from convostack.storage.base import Order


def list_sql(table: str, columns: str, where: str, order: Order) -> str:
    """Always at least one row: `cursor_found` (false for an unknown `after`), then the
    page's `columns` (NULL for an empty page). $1 is the owner, $2 the cursor, $3 what
    `where` (a condition on the table's rows as `r`) compares with, $4 the row limit."""
    comparison, direction, start = (">", "ASC", -1) if order == "asc" else ("<", "DESC", 2**63 - 1)
    selected = ", ".join(f"page.{c.strip()}" for c in columns.split(","))
    return f"""
SELECT ($2::text IS NULL OR after_row.pos IS NOT NULL) AS cursor_found, {selected}
FROM (SELECT 1) one
LEFT JOIN {table} after_row ON after_row.id = $2 AND after_row.owner = $1
LEFT JOIN LATERAL (
    SELECT {", ".join(f"r.{c.strip()}" for c in columns.split(","))} FROM {table} r
    WHERE r.owner = $1 AND ({where})
      AND r.pos {comparison} CASE WHEN $2::text IS NULL THEN {start} ELSE after_row.pos END
    ORDER BY r.pos {direction} LIMIT $4
) page ON true"""
