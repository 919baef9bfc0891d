{#- Fails when a raw table no longer agrees with its collection: the row count (without the rows a
    CDC load keeps for deleted documents), plus documents quarantined and never loaded, against the source count of the
    collection's last successful run in `_atlas_runs`, beyond the documents that changed while
    that run ran; or when that run's sampled `_id`/`updated_at` check found more stale rows than
    that. A mode that does not remove the rows of deleted documents (incremental without
    detect_deletes, an appended table: `sees_deletes` false) may hold more rows than the source:
    only fewer fail it there. The returned row names the collection. A raw table that does not exist holds 0 rows:
    the test passes where the collection was never loaded, fails where a run loaded it. A last run
    that loaded but could not be reconciled (MongoDB went away before the count, or a landing
    zone) has no counts: there is nothing to compare, and an older run's counts no longer apply. -#}
{#- Attached to the run history (`raw_table` names the collection's table) or to the raw table
    itself (the run history is then the `atlas` source's `_atlas_runs`). -#}
{% test reconciled_with_source(model, collection, raw_table=none) %}
{%- set runs = model if raw_table is not none else source('atlas', '_atlas_runs') -%}
{%- set raw_table = raw_table if raw_table is not none else model -%}
{#- run histories recorded before the column existed: every mode was held to the count -#}
{%- set sees_deletes = 'coalesce(sees_deletes, true)' if 'sees_deletes' in relation_columns(runs) else 'true' -%}

with last_run as (
    select
        collection,
        run_id,
        source_count,
        warehouse_count as counted_warehouse_rows,
        quarantined_missing,
        changed_during_run,
        sample_mismatches,
        coalesce(live_rows_only, false) as live_rows_only,
        {{ sees_deletes }} as sees_deletes
    from {{ runs }}
    where
        collection = '{{ collection }}'
        and status = 'succeeded'
    order by ended_at desc
    limit 1
),

warehouse_rows as (
    select
        count(*) as all_rows,
        coalesce(sum(case when {{ deleted_at(raw_table, 'raw_rows') }} is null then 1 else 0 end), 0) as live_rows
    from {{ relation_or_empty(raw_table, relation_columns(raw_table)) }} as raw_rows
),

warehouse as (
    select case when last_run.live_rows_only then warehouse_rows.live_rows else warehouse_rows.all_rows end as warehouse_count
    from warehouse_rows
    cross join last_run
)

select
    last_run.collection,
    last_run.run_id,
    last_run.source_count,
    warehouse.warehouse_count,
    last_run.quarantined_missing,
    last_run.changed_during_run,
    last_run.sample_mismatches
from last_run
cross join warehouse
where
    last_run.counted_warehouse_rows is not null
    and (
        last_run.source_count - warehouse.warehouse_count - last_run.quarantined_missing > last_run.changed_during_run
        or (
            last_run.sees_deletes
            and warehouse.warehouse_count + last_run.quarantined_missing - last_run.source_count > last_run.changed_during_run
        )
        or last_run.sample_mismatches > last_run.changed_during_run
    )

{% endtest %}
