"""The offline Redshift contract: every statement dbt and dlt would send to Redshift, produced
without a cluster and checked (`make compile-redshift`). A development tool: not in the wheel."""
