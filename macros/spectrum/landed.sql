{#- Reading the landing zone's external tables the way json_value and the unnest macros read the
    loaded JSON / SUPER columns: generated models (atlas-ingest scaffold) with atlas_source:
    spectrum. On Redshift the nested columns are Spectrum struct / array / map types, navigated on
    the external table itself (`landed.shipping.zipcode`), with lowercase keys: Spectrum's catalog
    keeps struct fields lowercase. On DuckDB they are JSON columns of a view over read_json.
    A key a struct field cannot name (dots, spaces, dashes) reads as null on both, so that the
    twins agree. -#}

{#- A typed scalar at a path inside a landed nested value (`value`: `landed.<column>`, an element
    alias, or landed_entry(...)). -#}
{% macro landed_value(value, path, data_type) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    {%- for key in keys -%}
        {%- if not modules.re.match('^[A-Za-z_][A-Za-z0-9_]*$', key) -%}
            {{- return('cast(null as ' ~ data_type ~ ')') -}}
        {%- endif -%}
    {%- endfor -%}
    {{- return(adapter.dispatch('landed_value', 'atlas_analytics')(atlas_analytics.landed_expression(value), keys, data_type)) -}}
{% endmacro %}

{% macro default__landed_value(value, keys, data_type) %}
    {{- return(atlas_analytics.json_value(value, keys, data_type)) -}}
{% endmacro %}

{% macro redshift__landed_value(value, keys, data_type) %}
    {{- return('cast(' ~ value ~ atlas_analytics.landed_path(keys) ~ ' as ' ~ data_type ~ ')') -}}
{% endmacro %}


{#- Rows of a landed array, one per element: renders the part of a FROM clause after the landed
    table (and the unnests before it); the element is then `<element>`, its 0-based position
    `<element>_index`. An empty, null or missing array gives no rows. -#}
{% macro landed_array(parent, path, element) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    {{- return(adapter.dispatch('landed_array', 'atlas_analytics')(
        atlas_analytics.landed_expression(parent), keys, atlas_analytics.landed_alias(element))) -}}
{% endmacro %}

{% macro default__landed_array(parent, keys, element) %}
    {{ exceptions.raise_compiler_error("landed_array is not implemented for " ~ target.type) }}
{% endmacro %}

{% macro duckdb__landed_array(parent, keys, element) %}
    {{- atlas_analytics.duckdb_unnest_array(parent, keys, element) -}}
{%- endmacro %}

{% macro redshift__landed_array(parent, keys, element) %}
    , {{ parent }}{{ atlas_analytics.landed_path(keys) }} as {{ element }} at {{ element }}_index
{%- endmacro %}


{#- Rows of a landed object keyed by data (a Spectrum map), one per key: the key is then
    landed_key('<entry>'), the value landed_entry('<entry>'). -#}
{% macro landed_object(parent, path, entry) %}
    {%- set keys = atlas_analytics.json_path_keys(path) -%}
    {{- return(adapter.dispatch('landed_object', 'atlas_analytics')(
        atlas_analytics.landed_expression(parent), keys, atlas_analytics.landed_alias(entry))) -}}
{% endmacro %}

{% macro default__landed_object(parent, keys, entry) %}
    {{ exceptions.raise_compiler_error("landed_object is not implemented for " ~ target.type) }}
{% endmacro %}

{% macro duckdb__landed_object(parent, keys, entry) %}
    {{- atlas_analytics.duckdb_unnest_object(parent, keys, entry) -}}
{%- endmacro %}

{#- Spectrum unnests a map as an array of struct<key, value>. -#}
{% macro redshift__landed_object(parent, keys, entry) %}
    , {{ parent }}{{ atlas_analytics.landed_path(keys) }} as {{ entry }}
{%- endmacro %}

{% macro landed_key(entry) %}
    {{- return(adapter.dispatch('landed_key', 'atlas_analytics')(atlas_analytics.landed_alias(entry))) -}}
{% endmacro %}

{% macro default__landed_key(entry) %}{{ return(entry ~ '_key') }}{% endmacro %}

{% macro redshift__landed_key(entry) %}{{ return(entry ~ '.key') }}{% endmacro %}

{% macro landed_entry(entry) %}
    {{- return(adapter.dispatch('landed_entry', 'atlas_analytics')(atlas_analytics.landed_alias(entry))) -}}
{% endmacro %}

{% macro default__landed_entry(entry) %}{{ return(entry) }}{% endmacro %}

{% macro redshift__landed_entry(entry) %}{{ return(entry ~ '.value') }}{% endmacro %}


{#- A nested value as JSON is not selectable from a Spectrum external table: null of the JSON
    type, on both warehouses (the arrays and keyed objects have models of their own). -#}
{% macro landed_json() %}
    {{- return(adapter.dispatch('landed_json', 'atlas_analytics')()) -}}
{% endmacro %}

{% macro default__landed_json() %}{{ return('cast(null as json)') }}{% endmacro %}

{% macro redshift__landed_json() %}{{ return('cast(null as super)') }}{% endmacro %}


{#- Validation: expressions and aliases reach SQL as identifiers. -#}
{% macro landed_expression(value) %}
    {%- set part = '("[a-z_][a-z0-9_]*"|[a-z_][a-z0-9_]*)' -%}
    {%- if not modules.re.match('^' ~ part ~ '(\.' ~ part ~ ')*$', value) -%}
        {{ exceptions.raise_compiler_error("invalid landed value '" ~ value ~ "': lowercase identifiers joined by '.'") }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}

{% macro landed_alias(name) %}
    {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', name) -%}
        {{ exceptions.raise_compiler_error("invalid alias '" ~ name ~ "'") }}
    {%- endif -%}
    {{ return(name) }}
{% endmacro %}

{% macro landed_path(keys) %}
    {{- return(('.' ~ (keys | map('lower') | join('.'))) if keys else '') -}}
{% endmacro %}
