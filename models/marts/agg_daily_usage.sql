{{ config(dist='all', sort='record_date') }}

with

customers as (

    select * from {{ ref('customer_activity') }}

),

daily as (

    select
        -- grain
        record_date,
        state,

        -- counts
        count(*) as customers,
        sum(case when churn = 'True.' then 1 else 0 end) as churned_customers,
        sum(cust_serv_calls) as service_calls,

        -- usage
        sum(day_mins + eve_mins + night_mins + intl_mins) as total_minutes,
        sum(day_calls + eve_calls + night_calls + intl_calls) as total_calls,
        sum(total_charge) as total_charge

    from customers
    group by record_date, state

)

select * from daily
