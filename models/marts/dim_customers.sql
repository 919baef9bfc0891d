{{
    config(
        materialized='incremental',
        unique_key='customer_activity_id',
        dist='customer_activity_id',
        sort='record_date',
        post_hook="{{ delete_stale_rows('customer_activity_id', customer_activity_staging()) }}",
    )
}}

with

customers as (

    select * from {{ customer_activity_staging() }}
    where
        deleted_at is null
        {{ newer_than_loaded() }}

),

final as (

    select
        -- ids
        customer_activity_id,
        phone,

        -- profile
        state,
        area_code,
        account_length_days,

        -- plans
        has_intl_plan,
        has_vmail_plan,
        vmail_messages,

        -- activity
        total_charge,
        service_call_count,
        lists_service_calls,

        -- booleans
        is_churned,

        -- dates and timestamps
        cast(record_at as date) as record_date,
        updated_at,
        extracted_at

    from customers

)

select * from final
