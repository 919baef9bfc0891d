{{ config(enabled=var('churn_model_name', none) is not none) }}

with

source as (

    select * from {{ source('ml', 'churn_model_registry') }}

),

renamed as (

    select
        -- ids
        model_name,
        function_name,

        -- training
        feature_set,
        model_kind,
        training_seconds,

        -- dates and timestamps
        training_cutoff,
        trained_at

    from source

)

select * from renamed
