{#- The typed columns of a customer_activity document, flattened from its nested objects; shared
    by the staging models of the loaded table and of the landing zone, so both flatten alike. -#}
{% macro customer_activity_flattened(relation_alias) %}
        -- customer
        {{ json_value(relation_alias ~ '.customer', 'state', 'varchar(2)') }} as state,
        {{ json_value(relation_alias ~ '.customer', 'area_code', 'integer') }} as area_code,
        {{ json_value(relation_alias ~ '.customer', 'phone', 'varchar(8)') }} as phone,
        {{ json_value(relation_alias ~ '.customer', 'account_length_days', 'integer') }} as account_length_days,

        -- plans
        {{ json_value(relation_alias ~ '.plans', 'international.enrolled', 'boolean') }} as has_intl_plan,
        {{ json_value(relation_alias ~ '.plans', 'voice_mail.enrolled', 'boolean') }} as has_vmail_plan,
        {{ json_value(relation_alias ~ '.plans', 'voice_mail.messages', 'integer') }} as vmail_messages,

        -- usage
        {{ json_value(relation_alias ~ '.usage', 'day.minutes', 'double precision') }} as day_minutes,
        {{ json_value(relation_alias ~ '.usage', 'day.calls', 'integer') }} as day_calls,
        {{ json_value(relation_alias ~ '.usage', 'day.charge', 'double precision') }} as day_charge,
        {{ json_value(relation_alias ~ '.usage', 'evening.minutes', 'double precision') }} as evening_minutes,
        {{ json_value(relation_alias ~ '.usage', 'evening.calls', 'integer') }} as evening_calls,
        {{ json_value(relation_alias ~ '.usage', 'evening.charge', 'double precision') }} as evening_charge,
        {{ json_value(relation_alias ~ '.usage', 'night.minutes', 'double precision') }} as night_minutes,
        {{ json_value(relation_alias ~ '.usage', 'night.calls', 'integer') }} as night_calls,
        {{ json_value(relation_alias ~ '.usage', 'night.charge', 'double precision') }} as night_charge,
        {{ json_value(relation_alias ~ '.usage', 'international.minutes', 'double precision') }} as intl_minutes,
        {{ json_value(relation_alias ~ '.usage', 'international.calls', 'integer') }} as intl_calls,
        {{ json_value(relation_alias ~ '.usage', 'international.charge', 'double precision') }} as intl_charge,

        -- billing
        {{ json_value(relation_alias ~ '.billing', 'total_charge', 'double precision') }} as total_charge,
        {{ json_value(relation_alias ~ '.billing', 'currency', 'varchar(3)') }} as currency,
{%- endmacro %}
