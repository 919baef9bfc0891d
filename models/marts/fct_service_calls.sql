{{
    config(
        materialized='incremental',
        unique_key='customer_activity_id',
        dist='customer_activity_id',
        sort='opened_at',
        post_hook="{{ delete_rows_beyond_parent_count(ref('dim_customers'), 'customer_activity_id', 'service_call_index', 'service_call_count') }}",
    )
}}

with

service_calls as (

    select * from {{ ref('int_customer_activity__service_calls_unnested') }}
    where
        deleted_at is null
        {{ newer_than_loaded() }}

),

final as (

    select
        -- ids
        customer_activity_id || '-' || cast(service_call_index as varchar(8)) as service_call_id,
        customer_activity_id,
        service_call_index,

        -- call
        reason,
        channel,
        is_resolved,

        -- dates and timestamps
        opened_at,
        cast(opened_at as date) as opened_date,
        extracted_at

    from service_calls

)

select * from final
