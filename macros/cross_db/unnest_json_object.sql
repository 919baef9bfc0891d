{#- Rows of a JSON object column keyed by data (ids, dates as keys), one per key. Renders the part
    of a FROM clause that follows `from <relation> as <relation_alias>`; the value is then
    `<entry>` (pass it to json_value) and the key `<entry>_key`. Values that are not objects, and
    empty or null objects, produce no rows on both warehouses.

        from parent {{ unnest_json_object('parent', 'scores', 'element') }}
-#}
{% macro unnest_json_object(relation_alias, column, entry) %}
    {%- for name in [relation_alias, column, entry] -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
            {{ exceptions.raise_compiler_error("unnest_json_object: invalid identifier '" ~ name ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {{- return(adapter.dispatch('unnest_json_object', 'atlas_analytics')(relation_alias, column, entry)) -}}
{% endmacro %}

{% macro default__unnest_json_object(relation_alias, column, entry) %}
    {{ exceptions.raise_compiler_error("unnest_json_object is not implemented for " ~ target.type) }}
{% endmacro %}

{% macro duckdb__unnest_json_object(relation_alias, column, entry) %}
    {{- atlas_analytics.duckdb_unnest_object(relation_alias ~ '.' ~ column, [], entry) -}}
{%- endmacro %}

{#- DuckDB: rows of the object at `keys` inside the JSON value `value` (also the landing zone's,
    macros/spectrum/landed.sql). -#}
{% macro duckdb_unnest_object(value, keys, entry) %}
    {%- set object = "json_extract(" ~ value ~ ", '" ~ atlas_analytics.duckdb_json_path(keys) ~ "')" %}
    cross join lateral (
        select
            unnest(map_keys({{ entry }}_map)) as {{ entry }}_key,
            unnest(map_values({{ entry }}_map)) as {{ entry }}
        from (
            select
                case
                    when json_type({{ object }}) = 'OBJECT'
                        then try_cast({{ object }} as map(varchar, json))
                end as {{ entry }}_map
        ) as {{ entry }}_maps
    ) as {{ entry }}_rows
{%- endmacro %}

{#- Redshift unpivots a SUPER object in FROM: one row per attribute, its name in AT. -#}
{% macro redshift__unnest_json_object(relation_alias, column, entry) %}
    , unpivot {{ relation_alias }}.{{ column }} as {{ entry }} at {{ entry }}_key
{%- endmacro %}
