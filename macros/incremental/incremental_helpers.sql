{#- Helpers that keep incremental models equal to a full refresh. Each renders nothing on a
    first or full-refresh build. -#}

{#- A condition to append to a where clause: rows newer than what the model already holds, by
    raw extraction time (every row on a full build). -#}
{% macro newer_than_loaded(column='extracted_at') %}
    {%- if is_incremental() -%}
        and {{ column }} > (select coalesce(max(extracted_at), cast('1900-01-01' as timestamp)) from {{ this }})
    {%- else -%}
        and 1 = 1
    {%- endif -%}
{% endmacro %}

{#- Post-hook: delete rows whose key is soft-deleted upstream or gone from it (a hard delete, or a
    full ingestion that no longer has the document). -#}
{% macro delete_stale_rows(key, upstream) %}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} not in (
            select {{ key }} from {{ upstream }} where deleted_at is null
        )
    {%- endif -%}
{% endmacro %}

{#- Post-hook for child rows unnested from an array: delete rows at positions the parent no
    longer has (its array shrank) and rows whose parent is gone. -#}
{% macro delete_rows_beyond_parent_count(parent, key, index_column, count_column) %}
    {%- if is_incremental() -%}
        delete from {{ this }}
        using {{ parent }}
        where {{ this.identifier }}.{{ key }} = {{ parent.identifier }}.{{ key }}
            and {{ this.identifier }}.{{ index_column }} >= {{ parent.identifier }}.{{ count_column }};
        delete from {{ this }}
        where {{ key }} not in (select {{ key }} from {{ parent }})
    {%- endif -%}
{% endmacro %}
