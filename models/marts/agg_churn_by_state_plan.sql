{{ config(dist='all') }}

with

customers as (

    select * from {{ ref('customer_activity') }}

),

by_state_plan as (

    select
        -- grain
        state,
        intl_plan,
        vmail_plan,

        -- counts
        count(*) as customers,
        sum(case when churn = 'True.' then 1 else 0 end) as churned_customers,

        -- rates and averages
        cast(sum(case when churn = 'True.' then 1 else 0 end) as double precision) / count(*) as churn_rate,
        avg(total_charge) as avg_total_charge,
        avg(cast(cust_serv_calls as double precision)) as avg_service_calls

    from customers
    group by state, intl_plan, vmail_plan

)

select * from by_state_plan
