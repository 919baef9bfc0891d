{#- `dbt run-operation create_churn_model --args '{...}'`: trains the churn model with Redshift ML.

    CREATE MODEL is asynchronous, billed (SageMaker training), and a model name cannot be reused
    until it is dropped, so this runs only when called: no model, hook or materialization calls it.
    It refuses to replace an existing model unless `replace: true` (then DROP MODEL first), runs
    outside a transaction, and returns at once; `atlas-ingest churn train --target redshift`
    then polls churn_model_status until the model is READY (or FAILED, or a timeout).

    Arguments: model_name, function_name (default predict_<model_name>), feature_set
    (tutorial | extended), cutoff (training rows: record_date < cutoff), iam_role ('default' or an
    ARN), auto (true), model_type, problem_type, objective, hyperparameters (dict), s3_bucket,
    max_runtime, max_cells, replace (false). -#}
{% macro create_churn_model(model_name, function_name=none, feature_set='extended', cutoff=none, iam_role='default',
                            auto=true, model_type=none, problem_type='binary_classification', objective=none,
                            hyperparameters=none, s3_bucket=none, max_runtime=none, max_cells=none, replace=false) %}
    {%- set sql = atlas_analytics.create_churn_model_sql(model_name, function_name, feature_set, cutoff, iam_role, auto,
        model_type, problem_type, objective, hyperparameters, s3_bucket, max_runtime, max_cells) -%}
    {%- if target.type != 'redshift' -%}
        {{ exceptions.raise_compiler_error("create_churn_model runs on Redshift; locally use `atlas-ingest churn train --target local`") }}
    {%- endif -%}
    {%- set exists = atlas_analytics.churn_model_state(model_name) is not none -%}
    {%- if exists and not replace -%}
        {{ exceptions.raise_compiler_error("model " ~ model_name ~ " already exists: pass replace: true to drop and train it again (training is billed)") }}
    {%- endif -%}
    {%- if exists -%}
        {%- do atlas_analytics.run_outside_transaction(atlas_analytics.drop_churn_model_sql(model_name)) -%}
    {%- endif -%}
    {%- do atlas_analytics.run_outside_transaction(sql) -%}
    {{ log("CREATE MODEL " ~ model_name ~ " submitted: training runs asynchronously", info=true) }}
{% endmacro %}

{% macro create_churn_model_sql(model_name, function_name, feature_set, cutoff, iam_role, auto, model_type,
                                problem_type, objective, hyperparameters, s3_bucket, max_runtime, max_cells) %}
    {%- set model_name = atlas_analytics.ml_identifier(model_name, 'model name') -%}
    {%- set function_name = atlas_analytics.ml_identifier(function_name or ('predict_' ~ model_name), 'function name') -%}
    {%- set columns = atlas_analytics.churn_feature_columns(feature_set) -%}
    {%- set cutoff = cutoff or atlas_analytics.churn_training_cutoff() -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', cutoff | string) -%}
        {{ exceptions.raise_compiler_error("cutoff must be a date YYYY-MM-DD") }}
    {%- endif -%}
    {%- if iam_role != 'default' and not modules.re.match('^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$', iam_role) -%}
        {{ exceptions.raise_compiler_error("iam_role must be 'default' or an IAM role ARN") }}
    {%- endif -%}
    {%- for name, value in [('model_type', model_type), ('problem_type', problem_type)] -%}
        {%- if value is not none and not modules.re.match('^[a-z_]+$', value | string) -%}
            {{ exceptions.raise_compiler_error(name ~ " must be a keyword such as xgboost or binary_classification") }}
        {%- endif -%}
    {%- endfor -%}
    {%- set settings = [] -%}
    {%- if s3_bucket -%}
        {%- if not modules.re.match('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', s3_bucket) -%}
            {{ exceptions.raise_compiler_error("s3_bucket must be a bucket name") }}
        {%- endif -%}
        {%- do settings.append("s3_bucket '" ~ s3_bucket ~ "'") -%}
    {%- endif -%}
    {#- in the order of the CREATE MODEL reference -#}
    {%- if max_cells is not none -%}{%- do settings.append("max_cells " ~ (max_cells | int)) -%}{%- endif -%}
    {%- if max_runtime is not none -%}{%- do settings.append("max_runtime " ~ (max_runtime | int)) -%}{%- endif -%}
    create model {{ atlas_analytics.churn_registry_schema() }}.{{ model_name }}
    from (
        select {{ columns | join(', ') }}, churn
        from {{ ref('ml_churn_features') }}
        where record_date < cast('{{ cutoff }}' as date)
    )
    target churn
    function {{ function_name }}
    iam_role {% if iam_role == 'default' %}default{% else %}'{{ iam_role }}'{% endif %}
    {% if not auto %}auto off{% endif %}
    {% if model_type %}model_type {{ model_type }}{% endif %}
    {% if problem_type %}problem_type {{ problem_type }}{% endif %}
    {% if objective %}objective '{{ objective | replace("'", "") }}'{% endif %}
    {% if hyperparameters %}hyperparameters default except (
        {%- for key, value in hyperparameters.items() -%}
            {%- if not modules.re.match('^[a-z_]+$', key) %}{{ exceptions.raise_compiler_error("invalid hyperparameter " ~ key) }}{% endif -%}
            {{ key }} '{{ value | string | replace("'", "") }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    ){% endif %}
    {% if settings %}settings ({{ settings | join(', ') }}){% endif %}
{%- endmacro %}

{#- `dbt run-operation drop_churn_model --args '{model_name: ...}'`. -#}
{% macro drop_churn_model(model_name) %}
    {%- do atlas_analytics.run_outside_transaction(atlas_analytics.drop_churn_model_sql(model_name)) -%}
    {{ log("dropped model " ~ model_name ~ " (if it existed)", info=true) }}
{% endmacro %}

{% macro drop_churn_model_sql(model_name) %}
    drop model if exists {{ atlas_analytics.churn_registry_schema() }}.{{ atlas_analytics.ml_identifier(model_name, 'model name') }}
{%- endmacro %}

{#- The model's state from SHOW MODEL (READY, TRAINING, FAILED, ...), or none when it does not exist. -#}
{% macro churn_model_state(model_name) %}
    {%- set model_name = atlas_analytics.ml_identifier(model_name, 'model name') -%}
    {%- set result = run_query("show model " ~ atlas_analytics.churn_registry_schema() ~ "." ~ model_name) if execute else none -%}
    {%- if result is none or result.rows | length == 0 -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for row in result.rows -%}
        {%- if (row[0] | string | lower) == 'model state' -%}
            {{ return(row[1] | string) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return('UNKNOWN') }}
{% endmacro %}

{#- `dbt run-operation churn_model_status --args '{model_name: ...}'`: logs one JSON line. -#}
{% macro churn_model_status(model_name) %}
    {%- set state = atlas_analytics.churn_model_state(model_name) -%}
    {{ log(tojson({"churn_model": model_name, "state": state or "MISSING"}), info=true) }}
{% endmacro %}
