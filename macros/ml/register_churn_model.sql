{#- `dbt run-operation register_churn_model --args '{...}'`: records a trained model (either
    warehouse) in <target schema>_ml.churn_model_registry, replacing an earlier row of that name. -#}
{% macro register_churn_model(model_name, function_name, feature_set, cutoff, model_kind, training_seconds, trained_at) %}
    {%- set schema = atlas_analytics.churn_registry_schema() -%}
    {%- set model_name = atlas_analytics.ml_identifier(model_name, 'model name') -%}
    {%- set function_name = atlas_analytics.ml_identifier(function_name, 'function name') -%}
    {%- do atlas_analytics.churn_feature_columns(feature_set) -%}
    {%- if model_kind not in ('redshift_ml', 'redshift_ml_xgboost', 'local_logistic_regression') -%}
        {{ exceptions.raise_compiler_error("model_kind must be redshift_ml, redshift_ml_xgboost or local_logistic_regression") }}
    {%- endif -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', cutoff | string) or not modules.re.match('^[0-9T:. +-]+$', trained_at | string) -%}
        {{ exceptions.raise_compiler_error("cutoff must be YYYY-MM-DD and trained_at an ISO timestamp") }}
    {%- endif -%}
    {%- do run_query("create schema if not exists " ~ schema) -%}
    {%- do run_query(
        "create table if not exists " ~ schema ~ ".churn_model_registry ("
        ~ "model_name varchar(127), function_name varchar(127), feature_set varchar(32), training_cutoff date, "
        ~ "model_kind varchar(32), training_seconds double precision, trained_at timestamp)"
    ) -%}
    {%- do run_query("delete from " ~ schema ~ ".churn_model_registry where model_name = '" ~ model_name ~ "'") -%}
    {%- do run_query(
        "insert into " ~ schema ~ ".churn_model_registry values ('" ~ model_name ~ "', '" ~ function_name ~ "', '"
        ~ feature_set ~ "', cast('" ~ cutoff ~ "' as date), '" ~ model_kind ~ "', " ~ (training_seconds | float)
        ~ ", cast('" ~ (trained_at | string)[:19] | replace('T', ' ') ~ "' as timestamp))"
    ) -%}
    {{ log("registered churn model " ~ model_name, info=true) }}
{% endmacro %}
