"""What a run did, per collection and as a whole: printed by the CLI, returned to callers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingestion.config import CollectionConfig
from ingestion.errors import IngestError
from ingestion.ops.reconcile import Reconciliation


@dataclass
class CollectionFailure:
    """A collection whose load failed; the run went on with the others."""

    config: CollectionConfig
    error: IngestError


@dataclass
class TableSummary:
    collection: str
    table: str
    mode: str
    documents_read: int
    rows_loaded: int
    quarantined: int
    new_columns: list[str] = field(default_factory=list)
    variant_columns: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_load: bool = False
    # cdc: documents read by a snapshot, change events applied, deletes among them, resyncs
    snapshot_docs: int = 0
    events: int = 0
    deletes: int = 0
    resyncs: list[str] = field(default_factory=list)
    # cdc runs that only read the stream: inserts and deletes after the count taken before the run
    changed_since_count: int | None = None
    # warehouse column -> source field, for the fields this run saw (`updated_at` -> `updatedAt`)
    source_fields: dict[str, str] = field(default_factory=dict)
    reconciliation: Reconciliation | None = None
    # stored columns this run widened (bigint -> double precision), the schema file, what it gained
    widened_columns: list[str] = field(default_factory=list)
    schema_file: str | None = None
    schema_changes: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k not in ("reconciliation", "changed_since_count", "source_fields")}
        r = self.reconciliation
        out["reconciliation"] = None if r is None else {**r.__dict__, "status": r.status}
        return out


@dataclass
class RunSummary:
    pipeline: str
    destination: str
    dataset: str
    load_id: str | None
    elapsed_s: float
    tables: list[TableSummary]
    run_id: str | None = None
    # collection -> error, for the collections that failed while the others loaded
    failed: dict[str, str] = field(default_factory=dict)
    # s3: the `load_date=` partitions this run may have landed files in (every UTC date it spanned)
    load_dates: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "destination": self.destination,
            "dataset": self.dataset,
            "load_id": self.load_id,
            "run_id": self.run_id,
            "elapsed_s": round(self.elapsed_s, 3),
            "tables": [t.as_dict() for t in self.tables],
            "failed": self.failed,
            **({"load_dates": self.load_dates} if self.load_dates else {}),
        }
