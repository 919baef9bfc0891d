{#- Features of both churn feature sets, the target, the training split and, for generated data,
    the true churn probability. Grain: one row per customer record (phone). -#}
with

customers as (

    select * from {{ ref('customer_activity') }}

),

signal as (

    select
        max(case when term = 'intercept' then coefficient end) as intercept,
        max(case when term = 'cust_serv_calls' then coefficient end) as per_service_call,
        max(case when term = 'intl_plan_yes' then coefficient end) as intl_plan_yes,
        max(case when term = 'vmail_plan_yes' then coefficient end) as vmail_plan_yes,
        max(case when term = 'day_mins_over_200' then coefficient end) as per_day_minute_over_200,
        max(case when term = 'intl_mins_over_12' then coefficient end) as per_intl_minute_over_12
    from {{ ref('churn_signal') }}

),

features as (

    select
        -- ids
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
        customers.record_date < cast('{{ churn_training_cutoff() }}' as date) as is_training,

        -- the generator's planted probability (meaningful on generated data only)
        1 / (1 + exp(-(
            signal.intercept
            + signal.per_service_call * customers.cust_serv_calls
            + signal.intl_plan_yes * case when customers.intl_plan = 'yes' then 1 else 0 end
            + signal.vmail_plan_yes * case when customers.vmail_plan = 'yes' then 1 else 0 end
            + signal.per_day_minute_over_200 * greatest(customers.day_mins - 200, 0)
            + signal.per_intl_minute_over_12 * greatest(customers.intl_mins - 12, 0)
        ))) as true_churn_probability

    from customers
    cross join signal

)

select * from features
