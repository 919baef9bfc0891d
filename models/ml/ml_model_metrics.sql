{#- Quality of the named churn model on the rows after its training cut-off (held out). On
    generated data (--vars '{churn_evaluation: true}'), next to the best achievable AUC: that of
    the generator's true churn probabilities on the same rows (ml_churn_evaluation); null otherwise. -#}
{#- Incremental on model_name: each scored model keeps its row; scoring a model again replaces it. -#}
{{
    config(
        enabled=var('churn_model_name', none) is not none,
        materialized='incremental',
        unique_key='model_name',
    )
}}

with

predictions as (

    select * from {{ ref('churn_predictions') }}

),

{% if var('churn_evaluation', false) -%}
evaluation as (

    select * from {{ ref('ml_churn_evaluation') }}

),

{% endif -%}

registry as (

    select * from {{ ref('stg_ml__churn_model_registry') }}
    where model_name = '{{ var("churn_model_name", "churn_model") }}'

),

ranked as (

    select
        case when actual_churn = 'True.' then 1 else 0 end as is_positive,
        case when predicted_churn = 'True.' then 1 else 0 end as is_predicted,
        -- average ranks, so that tied scores count half (Mann-Whitney AUC)
        rank() over (order by churn_probability)
        + (count(*) over (partition by churn_probability) - 1) / 2.0 as model_rank,
        {% if var('churn_evaluation', false) -%}
        rank() over (order by evaluation.true_churn_probability)
        + (count(*) over (partition by evaluation.true_churn_probability) - 1) / 2.0 as bayes_rank
        {%- else -%}
        cast(null as double precision) as bayes_rank
        {%- endif %}

    from predictions
    {% if var('churn_evaluation', false) -%}
    inner join evaluation on predictions.customer_activity_id = evaluation.customer_activity_id
    {%- endif %}

),

counts as (

    select
        count(*) as scored_rows,
        sum(is_positive) as positives,
        count(*) - sum(is_positive) as negatives,
        sum(case when is_positive = 1 then model_rank else 0 end) as positive_model_ranks,
        sum(case when is_positive = 1 then bayes_rank else 0 end) as positive_bayes_ranks,
        sum(is_positive * is_predicted) as true_positives,
        sum((1 - is_positive) * is_predicted) as false_positives,
        sum(is_positive * (1 - is_predicted)) as false_negatives,
        sum((1 - is_positive) * (1 - is_predicted)) as true_negatives

    from ranked

),

metrics as (

    select
        -- model
        registry.model_name,
        registry.model_kind,
        registry.feature_set,
        registry.training_cutoff,
        registry.training_seconds,
        registry.trained_at,

        -- held-out rows
        counts.scored_rows,
        counts.positives,

        -- quality
        (counts.positive_model_ranks - counts.positives * (counts.positives + 1) / 2.0)
        / nullif(counts.positives * counts.negatives, 0) as auc,
        (counts.positive_bayes_ranks - counts.positives * (counts.positives + 1) / 2.0)
        / nullif(counts.positives * counts.negatives, 0) as bayes_optimal_auc,
        cast(counts.true_positives + counts.true_negatives as double precision) / nullif(counts.scored_rows, 0) as accuracy,
        cast(counts.true_positives as double precision) / nullif(counts.true_positives + counts.false_positives, 0) as precision_score,
        cast(counts.true_positives as double precision) / nullif(counts.true_positives + counts.false_negatives, 0) as recall_score,
        2.0 * counts.true_positives
        / nullif(2 * counts.true_positives + counts.false_positives + counts.false_negatives, 0) as f1_score

    from registry
    cross join counts

)

select * from metrics
