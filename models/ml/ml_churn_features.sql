{#- Features of both churn feature sets, the target and the training split. Grain: one row per
    customer document (customer_activity_id); `phone` is an attribute, not a key. -#}
with

customers as (

    select * from {{ ref('int_customer_activity__tutorial_columns') }}

),

features as (

    select
        -- ids
        customers.customer_activity_id,
        customers.phone,

        -- tutorial features
        customers.state,
        customers.account_length,
        customers.area_code,
        customers.total_charge / nullif(customers.account_length, 0) as average_daily_spend,
        cast(customers.cust_serv_calls as double precision)
        / nullif(customers.account_length, 0) as average_daily_cases,

        -- extended features
        customers.intl_plan,
        customers.vmail_plan,
        customers.vmail_message,
        customers.cust_serv_calls,
        customers.day_mins,
        customers.eve_mins,
        customers.night_mins,
        customers.intl_mins,
        greatest(customers.day_mins - 200, 0) as day_mins_over_200,
        greatest(customers.intl_mins - 12, 0) as intl_mins_over_12,

        -- target and split
        customers.churn,
        customers.record_date,
        customers.record_date < cast('{{ churn_training_cutoff() }}' as date) as is_training

    from customers

)

select * from features
