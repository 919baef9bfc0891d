"""Widening a stored column in the warehouse: an integer column that starts receiving doubles
(or decimals) becomes double precision (or decimal(38, 9)) before the rows that need it load.

dlt adds columns but never changes a column's type, and DuckDB would cast 2.5 into a bigint
column as 2 without a word, so the table is altered first:

- DuckDB: `alter table ... alter column ... type double`;
- Redshift (which changes only varchar lengths in place): in one transaction, add the column
  with the new type, copy the values, drop the old column, rename the new one.

The resource widens before it yields the batch that needs it (not the run, after extraction),
so a plain dlt pipeline over `atlas_source` widens too. The staging table of the same name (merge and replace loads) is dropped: dlt recreates it from
the schema, with the new type, at the next load. The S3 landing zone needs neither: each file
carries its own types.
"""

from __future__ import annotations

import logging
from typing import Any

import dlt

from ingestion.mongo.bson_types import DECIMAL, DECIMAL_PRECISION, DECIMAL_SCALE, DOUBLE

log = logging.getLogger("atlas_ingest")

_SQL_TYPES = {
    "duckdb": {DOUBLE: "double", DECIMAL: f"decimal({DECIMAL_PRECISION}, {DECIMAL_SCALE})"},
    "redshift": {DOUBLE: "double precision", DECIMAL: f"numeric({DECIMAL_PRECISION}, {DECIMAL_SCALE})"},
}
WIDENING_SUFFIX = "__atlas_widened"


def dialect_of(pipeline: dlt.Pipeline) -> str | None:
    """"duckdb" or "redshift" for the SQL destinations whose tables can be widened; None otherwise."""
    from dlt.destinations import duckdb, redshift  # subclasses too (the atomic-replace Redshift)

    for dialect, factory in (("duckdb", duckdb), ("redshift", redshift)):
        if isinstance(pipeline.destination, factory):
            return dialect
    return None


def widening_statements(sql: Any, dialect: str, table: str, column: str, kind: str) -> list[str]:
    """The statements that change `column` of `table` (in the sql client's dataset) to `kind`."""
    qualified = sql.make_qualified_table_name(table)
    col = sql.escape_column_name(column)
    sql_type = _SQL_TYPES[dialect][kind]
    if dialect == "duckdb":
        return [f"alter table {qualified} alter column {col} type {sql_type}"]
    new = sql.escape_column_name(column + WIDENING_SUFFIX)
    return [
        f"alter table {qualified} add column {new} {sql_type}",
        f"update {qualified} set {new} = {col}",
        f"alter table {qualified} drop column {col}",
        f"alter table {qualified} rename column {new} to {col}",
    ]


def stored_column_type(sql: Any, table: str, column: str) -> str | None:
    """The column's type in the warehouse, None when the table or column does not exist there."""
    rows = sql.execute_sql(
        "select data_type from information_schema.columns where table_schema = %s and table_name = %s and column_name = %s",
        sql.dataset_name, table, column,
    )
    return str(rows[0][0]) if rows else None


def widen_columns(pipeline: dlt.Pipeline, table: str, widenings: dict[str, str]) -> list[str]:
    """Widen each stored `column -> kind` of `table` in the pipeline's warehouse; returns the
    statements run (none on destinations without tables)."""
    dialect = dialect_of(pipeline)
    if not widenings or dialect is None:
        return []
    ran: list[str] = []
    with pipeline.sql_client() as sql:
        for column, kind in widenings.items():
            current = stored_column_type(sql, table, column)
            if current is None:
                continue  # not in the warehouse yet: dlt creates it with the new type
            statements = widening_statements(sql, dialect, table, column, kind)
            with sql.begin_transaction():
                for statement in statements:
                    sql.execute_sql(statement)
            ran += statements
            log.warning("table '%s': column '%s' widened from %s to %s (a value of the wider type arrived)",
                        table, column, current.lower(), _SQL_TYPES[dialect][kind])
        with sql.with_staging_dataset():
            sql.execute_sql(f"drop table if exists {sql.make_qualified_table_name(table)}")
    return ran
