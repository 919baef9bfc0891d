{#- A typed scalar at a path inside a JSON (DuckDB) or SUPER (Redshift) column; null when the
    path is missing. `column` should be qualified with its relation (e.g. `source.usage`); `path`
    is a dotted string or a list of keys (macros/cross_db/json_path.sql). -#}
{% macro json_value(column, path, data_type) %}
    {{- return(adapter.dispatch('json_value', 'atlas_analytics')(column, path, data_type)) -}}
{% endmacro %}

{% macro default__json_value(column, path, data_type) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    cast(json_extract_path_text({{ column }}, '{{ keys | join("', '") }}') as {{ data_type }})
{%- endmacro %}

{% macro duckdb__json_value(column, path, data_type) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    try_cast(json_extract_string({{ column }}, '{{ atlas_analytics.duckdb_json_path(keys) }}') as {{ data_type }})
{%- endmacro %}

{% macro redshift__json_value(column, path, data_type) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    cast({{ column }}{{ atlas_analytics.redshift_super_path(keys) }} as {{ data_type }})
{%- endmacro %}
