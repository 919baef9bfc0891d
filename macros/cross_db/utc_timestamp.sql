{#- A timestamp-with-time-zone column as a plain UTC timestamp, whatever the session time zone. -#}
{% macro utc_timestamp(column) %}
    {{- return(adapter.dispatch('utc_timestamp', 'atlas_analytics')(column)) -}}
{% endmacro %}

{% macro default__utc_timestamp(column) %}
    cast({{ column }} at time zone 'UTC' as timestamp)
{%- endmacro %}

{% macro duckdb__utc_timestamp(column) %}
    timezone('UTC', {{ column }})
{%- endmacro %}

{% macro redshift__utc_timestamp(column) %}
    convert_timezone('UTC', {{ column }})
{%- endmacro %}
