{#- The typed columns of a customer_activity document, shared by the staging models of the
    loaded table and of the landing zone, so both read alike. Two document shapes are read:

    - nested, as the generator writes them: customer, plans, usage and billing objects;
    - flat, the tutorial's own table as imported from its JSON file (MongoDB Compass,
      mongoimport): state, account_length, intl_plan ('yes'/'no'), ..., churn ('True.'/'False.').

    `columns` are the relation's columns ({name: type}, from relation_columns); none means every
    column of both shapes is there (the external tables declare both). Each output column takes
    the nested value when the document has one, else the flat one, else null. -#}
{% macro customer_activity_flattened(relation_alias, columns=none) %}
    {%- set groups = [
        ('customer', [
            ('state', 'varchar(2)', 'customer', 'state', 'state'),
            ('area_code', 'integer', 'customer', 'area_code', 'area_code'),
            ('phone', 'varchar(8)', 'customer', 'phone', 'phone'),
            ('account_length_days', 'integer', 'customer', 'account_length_days', 'account_length'),
        ]),
        ('plans', [
            ('has_intl_plan', 'boolean', 'plans', 'international.enrolled', 'intl_plan'),
            ('has_vmail_plan', 'boolean', 'plans', 'voice_mail.enrolled', 'vmail_plan'),
            ('vmail_messages', 'integer', 'plans', 'voice_mail.messages', 'vmail_message'),
        ]),
        ('usage', [
            ('day_minutes', 'double precision', 'usage', 'day.minutes', 'day_mins'),
            ('day_calls', 'integer', 'usage', 'day.calls', 'day_calls'),
            ('day_charge', 'double precision', 'usage', 'day.charge', 'day_charge'),
            ('evening_minutes', 'double precision', 'usage', 'evening.minutes', 'eve_mins'),
            ('evening_calls', 'integer', 'usage', 'evening.calls', 'eve_calls'),
            ('evening_charge', 'double precision', 'usage', 'evening.charge', 'eve_charge'),
            ('night_minutes', 'double precision', 'usage', 'night.minutes', 'night_mins'),
            ('night_calls', 'integer', 'usage', 'night.calls', 'night_calls'),
            ('night_charge', 'double precision', 'usage', 'night.charge', 'night_charge'),
            ('intl_minutes', 'double precision', 'usage', 'international.minutes', 'intl_mins'),
            ('intl_calls', 'integer', 'usage', 'international.calls', 'intl_calls'),
            ('intl_charge', 'double precision', 'usage', 'international.charge', 'intl_charge'),
        ]),
        ('billing', [
            ('total_charge', 'double precision', 'billing', 'total_charge', 'total_charge'),
            ('currency', 'varchar(3)', 'billing', 'currency', none),
        ]),
    ] -%}
    {%- for group, fields in groups %}
        -- {{ group }}
        {%- for name, data_type, parent, path, flat in fields %}
        {{ atlas_analytics.first_present([
            atlas_analytics.json_value(relation_alias ~ '.' ~ parent, path, data_type) if columns is none or parent in columns else none,
            atlas_analytics.customer_activity_flat_value(relation_alias ~ '.' ~ flat, data_type) if flat and (columns is none or flat in columns) else none,
        ], data_type) }} as {{ name }},
        {%- endfor %}
    {% endfor %}
{%- endmacro %}


{#- A flat column of the tutorial's table as the type of the nested value it stands for: its
    'yes'/'no' plans as booleans; anything else is cast. -#}
{% macro customer_activity_flat_value(column, data_type) %}
    {%- if data_type == 'boolean' -%}
        case {{ column }} when 'yes' then true when 'no' then false end
    {%- else -%}
        cast({{ column }} as {{ data_type }})
    {%- endif -%}
{% endmacro %}


{#- Whether the customer left: the nested `churned` boolean, else the tutorial's 'True.'/'False.'. -#}
{% macro customer_activity_churned(relation_alias, columns=none) %}
    {{- atlas_analytics.first_present([
        relation_alias ~ '.churned' if columns is none or 'churned' in columns else none,
        "case " ~ relation_alias ~ ".churn when 'True.' then true when 'False.' then false end" if columns is none or 'churn' in columns else none,
    ], 'boolean') -}}
{% endmacro %}


{#- The first non-null of the expressions that exist (none marks one whose column is missing);
    a typed null when none exists. -#}
{% macro first_present(expressions, data_type) %}
    {%- set present = expressions | reject('none') | map('trim') | list -%}
    {%- if present | length == 0 -%}
        cast(null as {{ data_type }})
    {%- elif present | length == 1 -%}
        {{ present[0] }}
    {%- else -%}
        coalesce({{ present | join(', ') }})
    {%- endif -%}
{% endmacro %}


{#- A timestamp column of the raw table as UTC: loaded as a timestamp, or as text where the
    documents hold dates as strings (the tutorial's '2020-08-24'); null when the column is missing. -#}
{% macro customer_activity_timestamp(relation_alias, column, columns) %}
    {%- set data_type = columns.get(column) -%}
    {%- if data_type is none -%}
        cast(null as timestamp)
    {%- elif 'char' in data_type or 'text' in data_type or 'string' in data_type -%}
        {{ atlas_analytics.text_timestamp(relation_alias ~ '.' ~ column) }}
    {%- else -%}
        {{ atlas_analytics.utc_timestamp(relation_alias ~ '.' ~ column) }}
    {%- endif -%}
{% endmacro %}
