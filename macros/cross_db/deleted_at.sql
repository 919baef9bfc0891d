{#- The soft-delete time of a raw row: `_deleted_at` when the raw table has it (CDC loads that
    keep deleted rows), otherwise null. Looked up when the model compiles. -#}
{% macro deleted_at(relation, relation_alias) %}
    {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list if execute else [] -%}
    {%- if '_deleted_at' in columns -%}
        {{ atlas_analytics.utc_timestamp(relation_alias ~ '._deleted_at') }}
    {%- else -%}
        cast(null as timestamp)
    {%- endif -%}
{% endmacro %}
