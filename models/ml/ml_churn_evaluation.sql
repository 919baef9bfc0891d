{#- The churn probability the data generator planted in each generated customer document
    (seeds/churn_signal.csv), the best any model can score on that data: ml_model_metrics sets a
    model's AUC beside it. Meaningless on real data, so built only when asked for generated data:
    --vars '{churn_evaluation: true}'. Grain: one row per customer document. -#}
{{ config(enabled=var('churn_evaluation', false)) }}

with

features as (

    select * from {{ ref('ml_churn_features') }}

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

final as (

    select
        -- ids
        features.customer_activity_id,

        -- probabilities
        1 / (1 + exp(-(
            signal.intercept
            + signal.per_service_call * features.cust_serv_calls
            + signal.intl_plan_yes * case when features.intl_plan = 'yes' then 1 else 0 end
            + signal.vmail_plan_yes * case when features.vmail_plan = 'yes' then 1 else 0 end
            + signal.per_day_minute_over_200 * features.day_mins_over_200
            + signal.per_intl_minute_over_12 * features.intl_mins_over_12
        ))) as true_churn_probability

    from features
    cross join signal

)

select * from final
