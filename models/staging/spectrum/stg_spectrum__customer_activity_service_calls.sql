{#- One row per service call of the newest landed version of each document, with its 0-based
    position: the landing-zone twin of int_customer_activity__service_calls_unnested. -#}
{{ config(enabled=var('atlas_source', 'loaded') == 'spectrum') }}

with

versions as (

    {{ landed_current_versions(source('atlas_landing', 'customer_activity')) }}

),

unnested as (

    select
        -- ids (the position is a column of the unnest, unqualified on both warehouses)
        landed._id as customer_activity_id,
        service_call_index,  -- noqa: RF03

        -- service call
        {{ json_value('service_call', 'reason', 'varchar(32)') }} as reason,
        {{ json_value('service_call', 'channel', 'varchar(16)') }} as channel,
        {{ json_value('service_call', 'resolved', 'boolean') }} as is_resolved,

        -- timestamps
        {{ utc_timestamp(json_value('service_call', 'opened_at', 'timestamptz')) }} as opened_at,
        {{ utc_timestamp('cast(landed._atlas_extracted_at as timestamptz)') }} as extracted_at,
        versions.deleted_at

    from {{ source('atlas_landing', 'customer_activity') }} as landed
    inner join versions
        on
            landed._id = versions._id
            and landed._atlas_extracted_at = versions.latest_extracted_at
    {{ unnest_json_array('landed', 'service_calls', 'service_call') }}

)

select * from unnested
