{#- The same columns as stg_atlas__customer_activity (less the raw service_calls array), read from
    the S3 landing zone in place. The external table is referenced directly, not through a CTE,
    because Spectrum navigates nested columns only on the table itself. -#}
{{ config(enabled=var('atlas_source', 'loaded') == 'spectrum') }}

with

versions as (

    -- the newest landed version of each document still in the source (CDC deletes and resyncs
    -- included: macros/spectrum/landed_current.sql)
    {{ landed_current_versions(source('atlas_landing', 'customer_activity')) }}

),

renamed as (

    select
        -- ids
        landed._id as customer_activity_id,

        -- customer, plans, usage, billing (macros/staging/customer_activity_flattened.sql)
        {{ customer_activity_flattened('landed') }}

        -- service calls: the tutorial's count where the document has it, else the array's length
        coalesce(
            cast(landed.cust_serv_calls as integer),
            {{ external_array_length('landed.service_calls') }}
        ) as service_call_count,

        -- booleans
        {{ customer_activity_churned('landed') }} as is_churned,
        landed.cust_serv_calls is null as lists_service_calls,

        -- timestamps
        {{ text_timestamp('landed.record_date') }} as record_at,
        {{ text_timestamp('landed.updated_at') }} as updated_at,
        {{ text_timestamp('landed._atlas_extracted_at') }} as extracted_at,
        versions.deleted_at,

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
