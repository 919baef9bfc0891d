"""The dlt source: MongoDB collections as dlt resources (see `ingestion.source.atlas`)."""

from ingestion.source.atlas import atlas_source

__all__ = ["atlas_source"]
