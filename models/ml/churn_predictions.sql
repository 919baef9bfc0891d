{#- The tutorial's first query: the churn prediction for every customer record scored after the
    training cut-off. Built when a trained model is named: --vars '{churn_model_name: ...}'. -#}
{{ config(enabled=var('churn_model_name', none) is not none) }}

{%- set model_name = var('churn_model_name', 'churn_model') -%}
{%- set function_name = var('churn_function_name', 'predict_' ~ model_name) -%}
{%- set feature_set = churn_model_feature_set(model_name) -%}
{%- set model_kind = churn_model_kind(model_name) -%}

with

features as (

    select * from {{ ref('ml_churn_features') }}
    where not is_training

),

scored as (

    select
        customer_activity_id,
        phone,
        state,
        record_date,
        churn,
        {{ churn_model_outputs(model_name, function_name, feature_set, model_kind) }}
    from features

),

final as (

    select
        -- ids
        customer_activity_id,
        '{{ model_name }}' as model_name,

        -- attributes
        phone,
        state,
        churn as actual_churn,
        predicted_churn,

        -- probabilities
        {{ churn_probability_from('scored.churn_model_output', model_kind) }} as churn_probability,

        -- dates
        record_date

    from scored

)

select * from final
