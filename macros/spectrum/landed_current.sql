{#- The current version of each document in a landing-zone table, from every version landed:
    `_id`, the newest version's `latest_extracted_at` (join the table on both to read it), and
    `deleted_at`. A CDC delete lands as the newest version: with hard deletes (`_atlas_deleted`)
    the document is left out, with soft deletes (`_deleted_at`) it is dated. A resync lands a
    marker row (`_atlas_swept`, no `_id`) once its new snapshot was read to the end: a document
    whose newest version is older and of another snapshot is no longer in the source, and is left
    out (or dated by the marker's `_deleted_at` when deletes are soft), as the sweep does on the
    loaded tables. Full and incremental landings carry none of these columns: every document counts. -#}
{% macro landed_current_versions(relation) %}
    {%- set swept -%}
        coalesce(
            newest._atlas_snapshot_id <> last_sweep._atlas_snapshot_id
            and newest._atlas_extracted_at < last_sweep._atlas_extracted_at,
            false
        )
    {%- endset -%}
    select
        newest._id,
        newest._atlas_extracted_at as latest_extracted_at,
        case
            when newest._deleted_at is not null
                then {{ atlas_analytics.text_timestamp('newest._deleted_at') }}
            when {{ swept }}
                then {{ atlas_analytics.text_timestamp('last_sweep._deleted_at') }}
        end as deleted_at
    from {{ relation }} as newest
    inner join (
        select
            _id,
            max(_atlas_extracted_at) as latest_extracted_at
        from {{ relation }}
        where _id is not null
        group by _id
    ) as versions
        on
            newest._id = versions._id
            and newest._atlas_extracted_at = versions.latest_extracted_at
    left join (
        select
            _atlas_snapshot_id,
            _atlas_extracted_at,
            _deleted_at
        from {{ relation }}
        where
            _atlas_swept
            and _atlas_extracted_at = (select max(_atlas_extracted_at) from {{ relation }} where _atlas_swept)
    ) as last_sweep
        on true
    where
        not coalesce(newest._atlas_deleted, false)
        and not ({{ swept }} and last_sweep._deleted_at is null)
{%- endmacro %}
