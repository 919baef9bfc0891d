{{ config(enabled=var('atlas_source', 'loaded') == 'loaded') }}

{#- The raw table's columns decide what is read: the nested shape, the tutorial's flat one, or
    nothing at all when this warehouse holds no customer_activity (the model builds empty). -#}
{%- set raw = source('atlas', 'customer_activity') -%}
{%- set columns = relation_columns(raw) -%}

with

source as (

    select * from {{ relation_or_empty(raw, columns) }}

),

renamed as (

    select
        -- ids
        {{ first_present(['source._id' if '_id' in columns else none], 'varchar(512)') }} as customer_activity_id,

        -- customer, plans, usage, billing (macros/staging/customer_activity_flattened.sql)
        {{ customer_activity_flattened('source', columns) }}

        -- service calls: the tutorial's count where the document has it, else the array's length
        {{ first_present([
            'cast(source.cust_serv_calls as integer)' if 'cust_serv_calls' in columns else none,
            json_array_length('source.service_calls') if 'service_calls' in columns else none,
        ], 'integer') }} as service_call_count,
        {{ first_present(
            ['source.service_calls' if 'service_calls' in columns else none], json_column_type(),
        ) }} as service_calls,

        -- booleans
        {{ customer_activity_churned('source', columns) }} as is_churned,
        {{ 'source.cust_serv_calls is null' if 'cust_serv_calls' in columns else 'true' }} as lists_service_calls,

        -- timestamps
        {{ customer_activity_timestamp('source', 'record_date', columns) }} as record_at,
        {{ customer_activity_timestamp('source', 'updated_at', columns) }} as updated_at,
        {{ customer_activity_timestamp('source', '_atlas_extracted_at', columns) }} as extracted_at,
        {{ deleted_at(raw, 'source') }} as deleted_at,

        -- load metadata
        {{ first_present(
            ['source._dlt_load_id' if '_dlt_load_id' in columns else none], 'varchar(64)',
        ) }} as dlt_load_id

    from source

)

select * from renamed
