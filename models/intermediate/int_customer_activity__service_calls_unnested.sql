{#- With atlas_source: spectrum, the landing zone's own unnest (only staging reads sources). -#}
{% if var('atlas_source', 'loaded') == 'spectrum' %}

select * from {{ ref('stg_spectrum__customer_activity_service_calls') }}

{% else %}

with

customers as (

    select * from {{ ref('stg_atlas__customer_activity') }}

),

unnested as (

    select
        -- ids (the position is a column of the unnest, unqualified on both warehouses)
        customers.customer_activity_id,
        service_call_index,  -- noqa: RF03

        -- service call
        {{ json_value('service_call', 'reason', 'varchar(32)') }} as reason,
        {{ json_value('service_call', 'channel', 'varchar(16)') }} as channel,
        {{ json_value('service_call', 'resolved', 'boolean') }} as is_resolved,

        -- timestamps
        {{ utc_timestamp(json_value('service_call', 'opened_at', 'timestamptz')) }} as opened_at,
        customers.extracted_at,
        customers.deleted_at

    from customers {{ unnest_json_array('customers', 'service_calls', 'service_call') }}

)

select * from unnested

{% endif %}
