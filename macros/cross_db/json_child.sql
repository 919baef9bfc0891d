{#- The JSON value (object, array or scalar) at a path inside a JSON / SUPER column, still JSON:
    for arrays and objects that later models unnest. -#}
{% macro json_child(column, path) %}
    {{- return(adapter.dispatch('json_child', 'atlas_analytics')(column, path)) -}}
{% endmacro %}

{% macro default__json_child(column, path) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    json_extract_path_text({{ column }}, '{{ keys | join("', '") }}')
{%- endmacro %}

{% macro duckdb__json_child(column, path) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    json_extract({{ column }}, '{{ atlas_analytics.duckdb_json_path(keys) }}')
{%- endmacro %}

{% macro redshift__json_child(column, path) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    {{ column }}{{ atlas_analytics.redshift_super_path(keys) }}
{%- endmacro %}
