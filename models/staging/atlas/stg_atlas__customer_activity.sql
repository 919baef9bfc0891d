{{ config(enabled=var('atlas_source', 'loaded') == 'loaded') }}

with

source as (

    select * from {{ source('atlas', 'customer_activity') }}

),

renamed as (

    select
        -- ids
        source._id as customer_activity_id,

        -- customer
        {{ json_value('source.customer', 'state', 'varchar(2)') }} as state,
        {{ json_value('source.customer', 'area_code', 'integer') }} as area_code,
        {{ json_value('source.customer', 'phone', 'varchar(8)') }} as phone,
        {{ json_value('source.customer', 'account_length_days', 'integer') }} as account_length_days,

        -- plans
        {{ json_value('source.plans', 'international.enrolled', 'boolean') }} as has_intl_plan,
        {{ json_value('source.plans', 'voice_mail.enrolled', 'boolean') }} as has_vmail_plan,
        {{ json_value('source.plans', 'voice_mail.messages', 'integer') }} as vmail_messages,

        -- usage
        {{ json_value('source.usage', 'day.minutes', 'double precision') }} as day_minutes,
        {{ json_value('source.usage', 'day.calls', 'integer') }} as day_calls,
        {{ json_value('source.usage', 'day.charge', 'double precision') }} as day_charge,
        {{ json_value('source.usage', 'evening.minutes', 'double precision') }} as evening_minutes,
        {{ json_value('source.usage', 'evening.calls', 'integer') }} as evening_calls,
        {{ json_value('source.usage', 'evening.charge', 'double precision') }} as evening_charge,
        {{ json_value('source.usage', 'night.minutes', 'double precision') }} as night_minutes,
        {{ json_value('source.usage', 'night.calls', 'integer') }} as night_calls,
        {{ json_value('source.usage', 'night.charge', 'double precision') }} as night_charge,
        {{ json_value('source.usage', 'international.minutes', 'double precision') }} as intl_minutes,
        {{ json_value('source.usage', 'international.calls', 'integer') }} as intl_calls,
        {{ json_value('source.usage', 'international.charge', 'double precision') }} as intl_charge,

        -- billing
        {{ json_value('source.billing', 'total_charge', 'double precision') }} as total_charge,
        {{ json_value('source.billing', 'currency', 'varchar(3)') }} as currency,

        -- service calls
        {{ json_array_length('source.service_calls') }} as service_call_count,
        source.service_calls,

        -- booleans
        source.churned as is_churned,

        -- timestamps
        {{ utc_timestamp('source.record_date') }} as record_at,
        {{ utc_timestamp('source.updated_at') }} as updated_at,
        {{ utc_timestamp('source._atlas_extracted_at') }} as extracted_at,
        {{ deleted_at(source('atlas', 'customer_activity'), 'source') }} as deleted_at,

        -- load metadata
        source._dlt_load_id as dlt_load_id

    from source

)

select * from renamed
