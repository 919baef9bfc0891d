{#- `dbt run-operation create_churn_model --args '{...}'`: trains the churn model with Redshift ML.

    CREATE MODEL is asynchronous, billed (SageMaker training), and a model name cannot be reused
    until it is dropped, so this runs only when called: no model, hook or materialization calls it.
    It refuses to replace an existing model unless `replace: true` (then DROP MODEL first), runs
    outside a transaction, and returns at once; `atlas-ingest churn train --target redshift`
    then polls churn_model_status until the model is READY (or FAILED, or a timeout).

    Arguments: model_name, function_name (default predict_<model_name>), feature_set
    (tutorial | extended), cutoff (training rows: record_date < cutoff), iam_role ('default' or an
    ARN), auto (true: AUTO ON; false: AUTO OFF XGBoost), model_type, problem_type, objective,
    hyperparameters (dict, AUTO OFF only), s3_bucket (required), max_runtime, max_cells,
    replace (false). -#}
{% macro create_churn_model(model_name, function_name=none, feature_set='extended', cutoff=none, iam_role='default',
                            auto=true, model_type=none, problem_type=none, objective=none,
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

{#- The two forms of the CREATE MODEL grammar for a binary target:
    - AUTO ON (SageMaker Autopilot): optional MODEL_TYPE (xgboost, mlp, linear_learner),
      PROBLEM_TYPE binary_classification and OBJECTIVE 'Accuracy', 'F1' or 'AUC'; no hyperparameters.
    - AUTO OFF (XGBoost as given): MODEL_TYPE xgboost, an XGBoost OBJECTIVE ('binary:logistic' or
      'binary:hinge'), HYPERPARAMETERS DEFAULT EXCEPT (...) with NUM_ROUND, and the preprocessing done
      here, as AUTO OFF requires: numeric inputs (churn_model_inputs) and a 0/1 target.
    SETTINGS always carries S3_BUCKET, which both forms require. -#}
{% macro create_churn_model_sql(model_name, function_name, feature_set, cutoff, iam_role, auto, model_type,
                                problem_type, objective, hyperparameters, s3_bucket, max_runtime, max_cells) %}
    {%- set model_name = atlas_analytics.ml_identifier(model_name, 'model name') -%}
    {%- set function_name = atlas_analytics.ml_identifier(function_name or ('predict_' ~ model_name), 'function name') -%}
    {%- set auto = auto not in (false, 'false', 'off', 0) -%}
    {%- set inputs = atlas_analytics.churn_model_inputs(feature_set, numeric_only=not auto) -%}
    {%- set names = atlas_analytics.churn_model_input_names(feature_set, numeric_only=not auto) -%}
    {%- set cutoff = cutoff or atlas_analytics.churn_training_cutoff() -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', cutoff | string) -%}
        {{ exceptions.raise_compiler_error("cutoff must be a date YYYY-MM-DD") }}
    {%- endif -%}
    {%- if iam_role != 'default' and not modules.re.match('^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$', iam_role) -%}
        {{ exceptions.raise_compiler_error("iam_role must be 'default' or an IAM role ARN") }}
    {%- endif -%}
    {%- if not s3_bucket -%}
        {{ exceptions.raise_compiler_error("CREATE MODEL needs s3_bucket (SETTINGS S3_BUCKET): the bucket Redshift and SageMaker share training data through (--s3-bucket or REDSHIFT_ML_S3_BUCKET)") }}
    {%- endif -%}
    {%- if not modules.re.match('^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$', s3_bucket) -%}
        {{ exceptions.raise_compiler_error("s3_bucket must be a bucket name") }}
    {%- endif -%}
    {%- set model_type = (model_type | lower) if model_type else none -%}
    {%- set problem_type = (problem_type | lower) if problem_type else none -%}
    {%- if auto -%}
        {%- set problem_type = problem_type or 'binary_classification' -%}
        {%- if model_type is not none and model_type not in ('xgboost', 'mlp', 'linear_learner') -%}
            {{ exceptions.raise_compiler_error("AUTO ON model_type must be xgboost, mlp or linear_learner (got " ~ model_type ~ ")") }}
        {%- endif -%}
        {%- if problem_type is not none and problem_type != 'binary_classification' -%}
            {{ exceptions.raise_compiler_error("churn is a binary_classification problem (got problem_type " ~ problem_type ~ ")") }}
        {%- endif -%}
        {%- if objective is not none and objective not in ('Accuracy', 'F1', 'AUC') -%}
            {{ exceptions.raise_compiler_error("AUTO ON objective for binary classification must be 'Accuracy', 'F1' or 'AUC' (got " ~ objective ~ ")") }}
        {%- endif -%}
        {%- if hyperparameters -%}
            {{ exceptions.raise_compiler_error("hyperparameters belong to AUTO OFF: pass auto: false with model_type xgboost and an XGBoost objective such as 'binary:logistic'") }}
        {%- endif -%}
    {%- else -%}
        {%- set model_type = model_type or 'xgboost' -%}
        {%- if model_type != 'xgboost' -%}
            {{ exceptions.raise_compiler_error("AUTO OFF trains XGBoost only (got model_type " ~ model_type ~ ")") }}
        {%- endif -%}
        {%- if problem_type is not none -%}
            {{ exceptions.raise_compiler_error("AUTO OFF takes no problem_type: the XGBoost objective says it") }}
        {%- endif -%}
        {%- if objective not in ('binary:logistic', 'binary:hinge') -%}
            {{ exceptions.raise_compiler_error("AUTO OFF needs an XGBoost objective for a 0/1 target: 'binary:logistic' or 'binary:hinge' (got " ~ objective ~ ")") }}
        {%- endif -%}
        {%- set known = ['num_round', 'alpha', 'colsample_bylevel', 'colsample_bynode', 'colsample_bytree', 'eta', 'gamma',
                         'lambda', 'max_delta_step', 'max_depth', 'min_child_weight', 'scale_pos_weight', 'subsample',
                         'tree_method'] -%}
        {%- if not hyperparameters or 'num_round' not in hyperparameters -%}
            {{ exceptions.raise_compiler_error("AUTO OFF needs hyperparameters with num_round, e.g. {num_round: '100'}") }}
        {%- endif -%}
        {%- for key, value in hyperparameters.items() -%}
            {%- if key not in known -%}
                {{ exceptions.raise_compiler_error("unknown XGBoost hyperparameter " ~ key ~ ": choose from " ~ known | join(', ')) }}
            {%- endif -%}
            {%- if not modules.re.match('^[0-9a-z._]+$', value | string) -%}
                {{ exceptions.raise_compiler_error("hyperparameter " ~ key ~ " must be a number or a keyword") }}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {#- in the order of the CREATE MODEL reference -#}
    {%- set settings = ["s3_bucket '" ~ s3_bucket ~ "'"] -%}
    {%- if max_cells is not none -%}{%- do settings.append("max_cells " ~ (max_cells | int)) -%}{%- endif -%}
    {%- if max_runtime is not none -%}{%- do settings.append("max_runtime " ~ (max_runtime | int)) -%}{%- endif -%}
    create model {{ atlas_analytics.churn_registry_schema() }}.{{ model_name }}
    from (
        select
            {% for input in inputs -%}
            {{ input }}{% if input != names[loop.index0] %} as {{ names[loop.index0] }}{% endif %},
            {% endfor -%}
            {% if auto %}churn{% else %}case when churn = 'True.' then 1 else 0 end as churn{% endif %}
        from {{ ref('ml_churn_features') }}
        where record_date < cast('{{ cutoff }}' as date)
    )
    target churn
    function {{ function_name }}
    iam_role {% if iam_role == 'default' %}default{% else %}'{{ iam_role }}'{% endif %}
    {% if not auto %}auto off{% endif %}
    {% if model_type %}model_type {{ model_type }}{% endif %}
    {% if problem_type %}problem_type {{ problem_type }}{% endif %}
    {% if objective %}objective '{{ objective }}'{% endif %}
    {% if not auto %}hyperparameters default except (
        {%- for key, value in hyperparameters.items() -%}
            {{ key }} '{{ value }}'{% if not loop.last %}, {% endif %}
        {%- endfor -%}
    ){% endif %}
    settings ({{ settings | join(', ') }})
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
