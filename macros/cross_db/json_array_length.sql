{#- Number of elements of a JSON array column (SUPER array on Redshift); null when not an array. -#}
{% macro json_array_length(column) %}
    {{- return(adapter.dispatch('json_array_length', 'atlas_analytics')(column)) -}}
{% endmacro %}

{% macro default__json_array_length(column) %}
    json_array_length({{ column }})
{%- endmacro %}

{% macro duckdb__json_array_length(column) %}
    case when json_type({{ column }}) = 'ARRAY' then json_array_length({{ column }}) end
{%- endmacro %}

{% macro redshift__json_array_length(column) %}
    get_array_length({{ column }})
{%- endmacro %}
