{#- The soft-delete time of a raw row: `_deleted_at` when the raw table has it (CDC loads that
    keep deleted rows), otherwise null. Looked up when the model compiles. -#}
{% macro deleted_at(relation, relation_alias) %}
    {%- if '_deleted_at' in atlas_analytics.relation_columns(relation) -%}
        {{ atlas_analytics.utc_timestamp(relation_alias ~ '._deleted_at') }}
    {%- else -%}
        cast(null as timestamp)
    {%- endif -%}
{% endmacro %}
