{{ config(enabled=var('atlas_source', 'loaded') == 'loaded') }}

with

source as (

    select * from {{ source('atlas', 'customer_activity') }}

),

renamed as (

    select
        -- ids
        source._id as customer_activity_id,

        -- customer, plans, usage, billing (macros/staging/customer_activity_flattened.sql)
        {{ customer_activity_flattened('source') }}

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
