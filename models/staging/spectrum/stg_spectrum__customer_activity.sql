{#- The same columns as stg_atlas__customer_activity (less the raw service_calls array), read from
    the S3 landing zone in place. The external table is referenced directly, not through a CTE,
    because Spectrum navigates nested columns only on the table itself. -#}
{{ config(enabled=var('atlas_source', 'loaded') == 'spectrum') }}

with

versions as (

    -- the landing zone keeps every landed version of a document: the newest one counts
    select
        _id,
        max(_atlas_extracted_at) as latest_extracted_at
    from {{ source('atlas_landing', 'customer_activity') }}
    group by _id

),

renamed as (

    select
        -- ids
        landed._id as customer_activity_id,

        -- customer
        {{ json_value('landed.customer', 'state', 'varchar(2)') }} as state,
        {{ json_value('landed.customer', 'area_code', 'integer') }} as area_code,
        {{ json_value('landed.customer', 'phone', 'varchar(8)') }} as phone,
        {{ json_value('landed.customer', 'account_length_days', 'integer') }} as account_length_days,

        -- plans
        {{ json_value('landed.plans', 'international.enrolled', 'boolean') }} as has_intl_plan,
        {{ json_value('landed.plans', 'voice_mail.enrolled', 'boolean') }} as has_vmail_plan,
        {{ json_value('landed.plans', 'voice_mail.messages', 'integer') }} as vmail_messages,

        -- usage
        {{ json_value('landed.usage', 'day.minutes', 'double precision') }} as day_minutes,
        {{ json_value('landed.usage', 'day.calls', 'integer') }} as day_calls,
        {{ json_value('landed.usage', 'day.charge', 'double precision') }} as day_charge,
        {{ json_value('landed.usage', 'evening.minutes', 'double precision') }} as evening_minutes,
        {{ json_value('landed.usage', 'evening.calls', 'integer') }} as evening_calls,
        {{ json_value('landed.usage', 'evening.charge', 'double precision') }} as evening_charge,
        {{ json_value('landed.usage', 'night.minutes', 'double precision') }} as night_minutes,
        {{ json_value('landed.usage', 'night.calls', 'integer') }} as night_calls,
        {{ json_value('landed.usage', 'night.charge', 'double precision') }} as night_charge,
        {{ json_value('landed.usage', 'international.minutes', 'double precision') }} as intl_minutes,
        {{ json_value('landed.usage', 'international.calls', 'integer') }} as intl_calls,
        {{ json_value('landed.usage', 'international.charge', 'double precision') }} as intl_charge,

        -- billing
        {{ json_value('landed.billing', 'total_charge', 'double precision') }} as total_charge,
        {{ json_value('landed.billing', 'currency', 'varchar(3)') }} as currency,

        -- service calls
        {{ external_array_length('landed.service_calls') }} as service_call_count,

        -- booleans
        landed.churned as is_churned,

        -- timestamps
        {{ utc_timestamp('cast(landed.record_date as timestamptz)') }} as record_at,
        {{ utc_timestamp('cast(landed.updated_at as timestamptz)') }} as updated_at,
        {{ utc_timestamp('cast(landed._atlas_extracted_at as timestamptz)') }} as extracted_at,
        cast(null as timestamp) as deleted_at,

        -- load metadata
        landed._dlt_load_id as dlt_load_id,
        landed.load_date

    from {{ source('atlas_landing', 'customer_activity') }} as landed
    inner join versions
        on
            landed._id = versions._id
            and landed._atlas_extracted_at = versions.latest_extracted_at

)

select * from renamed
