{#- The staging model of customer_activity the marts read: the loaded raw table, or the S3
    landing zone read in place, by var atlas_source (loaded | spectrum). -#}
{% macro customer_activity_staging() %}
    {%- set source_kind = var('atlas_source', 'loaded') -%}
    {%- if source_kind == 'spectrum' -%}
        {{ return(ref('stg_spectrum__customer_activity')) }}
    {%- elif source_kind == 'loaded' -%}
        {{ return(ref('stg_atlas__customer_activity')) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("var atlas_source must be loaded or spectrum, got '" ~ source_kind ~ "'") }}
    {%- endif -%}
{% endmacro %}

{#- Number of elements of an array column of an external table (0 when empty). -#}
{% macro external_array_length(column) %}
    {{- return(adapter.dispatch('external_array_length', 'atlas_analytics')(column)) -}}
{% endmacro %}

{% macro default__external_array_length(column) %}
    {{ atlas_analytics.json_array_length(column) }}
{%- endmacro %}

{% macro redshift__external_array_length(column) %}
    (select count(*) from {{ column }} as element)
{%- endmacro %}
