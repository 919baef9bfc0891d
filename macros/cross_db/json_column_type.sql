{#- The column type that holds JSON documents: JSON on DuckDB, SUPER on Redshift (for typed nulls
    where a raw table lacks a nested column). -#}
{% macro json_column_type() %}
    {{- return(adapter.dispatch('json_column_type', 'atlas_analytics')()) -}}
{% endmacro %}

{% macro default__json_column_type() %}json{% endmacro %}

{% macro redshift__json_column_type() %}super{% endmacro %}
