{#- The tutorial's second and third queries: predicted churners per state, and their share. -#}
{{ config(enabled=var('churn_model_name', none) is not none) }}

with

predictions as (

    select * from {{ ref('churn_predictions') }}

),

by_state as (

    select
        state,
        count(*) as scored_customers,
        sum(case when predicted_churn = 'True.' then 1 else 0 end) as predicted_churners,
        cast(sum(case when predicted_churn = 'True.' then 1 else 0 end) as double precision) / count(*) as predicted_churn_share

    from predictions
    group by state

)

select * from by_state
