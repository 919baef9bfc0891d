{#- The feature columns of each churn feature set, as columns of ml_churn_features. -#}
{% macro churn_feature_columns(feature_set) %}
    {%- set sets = {
        'tutorial': ['state', 'account_length', 'area_code', 'average_daily_spend', 'average_daily_cases'],
        'extended': ['state', 'account_length', 'area_code', 'average_daily_spend', 'average_daily_cases',
                     'intl_plan', 'vmail_plan', 'vmail_message', 'cust_serv_calls', 'day_mins', 'eve_mins',
                     'night_mins', 'intl_mins', 'day_mins_over_200', 'intl_mins_over_12'],
    } -%}
    {%- if feature_set not in sets -%}
        {{ exceptions.raise_compiler_error("unknown churn feature set '" ~ feature_set ~ "': choose tutorial or extended") }}
    {%- endif -%}
    {{ return(sets[feature_set]) }}
{% endmacro %}

{#- The inputs a churn model is trained and scored on, as select-list expressions over the columns
    of ml_churn_features. AUTO ON (and the local twin) take the columns as they are; AUTO OFF
    XGBoost takes numbers only, so the yes/no plans become 1/0 and the state (text) is left out. -#}
{% macro churn_model_inputs(feature_set, numeric_only=false) %}
    {%- set inputs = [] -%}
    {%- for column in atlas_analytics.churn_feature_columns(feature_set) -%}
        {%- if not numeric_only -%}
            {%- do inputs.append(column) -%}
        {%- elif column in ('intl_plan', 'vmail_plan') -%}
            {%- do inputs.append("case when " ~ column ~ " = 'yes' then 1 else 0 end") -%}
        {%- elif column != 'state' -%}
            {%- do inputs.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(inputs) }}
{% endmacro %}

{#- The names of churn_model_inputs, for the training query's select list. -#}
{% macro churn_model_input_names(feature_set, numeric_only=false) %}
    {%- set names = [] -%}
    {%- for column in atlas_analytics.churn_feature_columns(feature_set) -%}
        {%- if not (numeric_only and column == 'state') -%}
            {%- do names.append(column) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names) }}
{% endmacro %}

{#- Identifiers that reach DDL (model, function, schema names) must be plain identifiers. -#}
{% macro ml_identifier(name, what) %}
    {%- if not (name is string and modules.re.match('^[a-z_][a-z0-9_]{0,126}$', name)) -%}
        {{ exceptions.raise_compiler_error("invalid " ~ what ~ " '" ~ name ~ "': use lowercase letters, digits and underscores") }}
    {%- endif -%}
    {{ return(name) }}
{% endmacro %}

{#- The training cut-off date (var churn_training_cutoff), checked before it reaches SQL. -#}
{% macro churn_training_cutoff() %}
    {%- set value = var('churn_training_cutoff', '2020-01-01') | string -%}
    {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', value) -%}
        {{ exceptions.raise_compiler_error("churn_training_cutoff must be a date YYYY-MM-DD, got '" ~ value ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}

{#- Schema of the model registry and, locally, the model coefficients: <target schema>_ml. -#}
{% macro churn_registry_schema() %}
    {{- return(target.schema ~ '_ml') -}}
{% endmacro %}

{#- A column of a registered model's row in the churn model registry, or `fallback` when the
    registry does not know the model (or while compiling without a warehouse). -#}
{% macro churn_registry_value(model_name, column, fallback) %}
    {%- if not execute -%}
        {{ return(fallback) }}
    {%- endif -%}
    {%- set registry = adapter.get_relation(database=target.database, schema=atlas_analytics.churn_registry_schema(), identifier='churn_model_registry') -%}
    {%- if registry is none -%}
        {{ return(fallback) }}
    {%- endif -%}
    {%- set result = run_query("select " ~ column ~ " from " ~ registry ~ " where model_name = '"
        ~ atlas_analytics.ml_identifier(model_name, 'model name') ~ "'") -%}
    {{ return(result.rows[0][0] if result.rows | length > 0 else fallback) }}
{% endmacro %}

{#- The feature set a registered model was trained on (var churn_feature_set when the registry
    does not know it). -#}
{% macro churn_model_feature_set(model_name) %}
    {{- return(atlas_analytics.churn_registry_value(model_name, 'feature_set', var('churn_feature_set', 'extended'))) -}}
{% endmacro %}

{#- How a registered model scores (model_kind in the registry, else var churn_model_kind):
    redshift_ml (AUTO ON: a label function and its _probabilities twin), redshift_ml_xgboost (AUTO
    OFF: one function returning the probability of churn, over numeric inputs) or
    local_logistic_regression (the local twin's coefficients). -#}
{% macro churn_model_kind(model_name) %}
    {%- set fallback = var('churn_model_kind', 'redshift_ml' if target.type == 'redshift' else 'local_logistic_regression') -%}
    {{- return(atlas_analytics.churn_registry_value(model_name, 'model_kind', fallback)) -}}
{% endmacro %}
