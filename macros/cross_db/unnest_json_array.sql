{#- Rows of a JSON array column, one per element, with the element's 0-based position. Renders the
    part of a FROM clause that follows `from <relation> as <relation_alias>`; the element is then
    `<element>` (pass it to json_value) and its position `<element>_index`. Rows whose value is not
    an array, or is empty or null, produce no rows on both warehouses.

        from customers {{ unnest_json_array('customers', 'service_calls', 'service_call') }}
-#}
{% macro unnest_json_array(relation_alias, column, element) %}
    {%- for name in [relation_alias, column, element] -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
            {{ exceptions.raise_compiler_error("unnest_json_array: invalid identifier '" ~ name ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {{- return(adapter.dispatch('unnest_json_array', 'atlas_analytics')(relation_alias, column, element)) -}}
{% endmacro %}

{% macro default__unnest_json_array(relation_alias, column, element) %}
    {{ exceptions.raise_compiler_error("unnest_json_array is not implemented for " ~ target.type) }}
{% endmacro %}

{% macro duckdb__unnest_json_array(relation_alias, column, element) %}
    {{- atlas_analytics.duckdb_unnest_array(relation_alias ~ '.' ~ column, [], element) -}}
{%- endmacro %}

{#- DuckDB: rows of the array at `keys` inside the JSON value `value` (also the landing zone's,
    macros/spectrum/landed.sql). -#}
{% macro duckdb_unnest_array(value, keys, element) %}
    {%- set array = "json_extract(" ~ value ~ ", '" ~ atlas_analytics.duckdb_json_path(keys) ~ "[*]')" %}
    cross join lateral (
        select
            unnest({{ array }}) as {{ element }},
            generate_subscripts({{ array }}, 1) - 1 as {{ element }}_index
    ) as {{ element }}_rows
{%- endmacro %}

{% macro redshift__unnest_json_array(relation_alias, column, element) %}
    , {{ relation_alias }}.{{ column }} as {{ element }} at {{ element }}_index
{%- endmacro %}
