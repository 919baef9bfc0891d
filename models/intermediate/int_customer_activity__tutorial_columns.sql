{#- The tutorial's 23 columns of every live customer document (not soft-deleted), with the
    document's id: the churn models key on the document, since the tutorial's own rows repeat a
    phone. The mart customer_activity is these columns without the id. -#}
with

customers as (

    select * from {{ customer_activity_staging() }}

),

final as (

    select
        -- ids
        customer_activity_id,

        -- the tutorial's columns, in its order
        cast(state as varchar(2)) as state,
        cast(account_length_days as integer) as account_length,
        cast(area_code as integer) as area_code,
        cast(phone as varchar(8)) as phone,
        cast(case when has_intl_plan then 'yes' when not has_intl_plan then 'no' end as varchar(3)) as intl_plan,
        cast(case when has_vmail_plan then 'yes' when not has_vmail_plan then 'no' end as varchar(3)) as vmail_plan,
        cast(vmail_messages as integer) as vmail_message,
        cast(day_minutes as double precision) as day_mins,
        cast(day_calls as integer) as day_calls,
        cast(day_charge as double precision) as day_charge,
        cast(total_charge as double precision) as total_charge,
        cast(evening_minutes as double precision) as eve_mins,
        cast(evening_calls as integer) as eve_calls,
        cast(evening_charge as double precision) as eve_charge,
        cast(night_minutes as double precision) as night_mins,
        cast(night_calls as integer) as night_calls,
        cast(night_charge as double precision) as night_charge,
        cast(intl_minutes as double precision) as intl_mins,
        cast(intl_calls as integer) as intl_calls,
        cast(intl_charge as double precision) as intl_charge,
        cast(service_call_count as integer) as cust_serv_calls,
        cast(case when is_churned then 'True.' when not is_churned then 'False.' end as varchar(6)) as churn,
        cast(record_at as date) as record_date

    from customers
    where deleted_at is null

)

select * from final
