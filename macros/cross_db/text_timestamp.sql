{#- An ISO 8601 text timestamp ('2021-01-05T08:21:26+00:00') as a plain UTC timestamp; a date
    alone ('2020-08-24', as flat JSON exports hold it) is the start of that day, UTC, whatever
    the session time zone. -#}
{% macro text_timestamp(column) %}
    case
        when length({{ column }}) = 10 then cast(cast(substring({{ column }}, 1, 10) as date) as timestamp)
        else {{ atlas_analytics.utc_timestamp('cast(' ~ column ~ ' as timestamptz)') }}
    end
{%- endmacro %}
