{#- A JSON text given in the project (a fixture, a constant) as a JSON value: JSON on DuckDB,
    SUPER on Redshift. -#}
{% macro json_literal(json_text) %}
    {%- set quoted = "'" ~ (json_text | replace("'", "''")) ~ "'" -%}
    {{- return(adapter.dispatch('json_literal', 'atlas_analytics')(quoted)) -}}
{% endmacro %}

{% macro default__json_literal(quoted) %}
    cast({{ quoted }} as json)
{%- endmacro %}

{% macro redshift__json_literal(quoted) %}
    json_parse({{ quoted }})
{%- endmacro %}
