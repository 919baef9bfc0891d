{#- Scoring with the trained churn model, as select-list items over the feature columns:
    `predicted_churn` ('True.' / 'False.') and `churn_model_output`, from which
    churn_probability_from() takes the probability of 'True.'.
    Redshift: the prediction function CREATE MODEL made, and its `_probabilities` twin.
    DuckDB: the local twin's logistic model, its coefficients read from the registry schema. -#}
{% macro churn_model_outputs(model_name, function_name, feature_set, model_kind) %}
    {%- set model_name = atlas_analytics.ml_identifier(model_name, 'model name') -%}
    {%- set function_name = atlas_analytics.ml_identifier(function_name, 'function name') -%}
    {%- set inputs = atlas_analytics.churn_model_inputs(feature_set, numeric_only=model_kind == 'redshift_ml_xgboost') -%}
    {{- return(adapter.dispatch('churn_model_outputs', 'atlas_analytics')(model_name, function_name, inputs, model_kind)) -}}
{% endmacro %}

{% macro default__churn_model_outputs(model_name, function_name, columns, model_kind) %}
    {{ exceptions.raise_compiler_error("churn scoring is implemented for redshift and duckdb, not " ~ target.type) }}
{% endmacro %}

{% macro redshift__churn_model_outputs(model_name, function_name, columns, model_kind) %}
    {%- set schema = atlas_analytics.churn_registry_schema() -%}
    {%- if model_kind == 'redshift_ml_xgboost' -%}
    {#- binary:logistic: the function returns the probability of churn (1) -#}
    case when {{ schema }}.{{ function_name }}({{ columns | join(', ') }}) >= 0.5 then 'True.' else 'False.' end as predicted_churn,
    {{ schema }}.{{ function_name }}({{ columns | join(', ') }}) as churn_model_output
    {%- else -%}
    {{ schema }}.{{ function_name }}({{ columns | join(', ') }}) as predicted_churn,
    {{ schema }}.{{ function_name }}_probabilities({{ columns | join(', ') }}) as churn_model_output
    {%- endif -%}
{%- endmacro %}

{% macro duckdb__churn_model_outputs(model_name, function_name, columns, model_kind) %}
    {%- set terms = [] -%}
    {%- if execute -%}
        {%- set coefficients = run_query(
            "select feature, category, coefficient from " ~ atlas_analytics.churn_registry_schema()
            ~ ".churn_model_coefficients where model_name = '" ~ model_name ~ "' order by feature, category"
        ) -%}
        {%- if coefficients.rows | length == 0 -%}
            {{ exceptions.raise_compiler_error("no trained local churn model '" ~ model_name ~ "': run `atlas-ingest churn train --target local` first") }}
        {%- endif -%}
        {%- for row in coefficients.rows -%}
            {%- if row[0] == '(intercept)' -%}
                {%- do terms.append(row[2] | string) -%}
            {%- elif row[0] not in columns -%}
                {{ exceptions.raise_compiler_error("local churn model '" ~ model_name ~ "' uses feature '" ~ row[0] ~ "', not in this feature set") }}
            {%- elif row[1] is none -%}
                {%- do terms.append("(" ~ row[2] ~ ") * coalesce(" ~ row[0] ~ ", 0)") -%}
            {%- else -%}
                {%- do terms.append("case when cast(" ~ row[0] ~ " as varchar) = '" ~ (row[1] | replace("'", "''")) ~ "' then (" ~ row[2] ~ ") else 0 end") -%}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {%- do terms.append('0') -%}
    {%- endif -%}
    {%- set probability = "1 / (1 + exp(-(" ~ terms | join(" + ") ~ ")))" -%}
    case when {{ probability }} >= 0.5 then 'True.' else 'False.' end as predicted_churn,
    {{ probability }} as churn_model_output
{%- endmacro %}


{#- The probability of 'True.' from a churn_model_output column. -#}
{% macro churn_probability_from(column, model_kind) %}
    {{- return(adapter.dispatch('churn_probability_from', 'atlas_analytics')(column, model_kind)) -}}
{% endmacro %}

{% macro default__churn_probability_from(column, model_kind) %}
    cast({{ column }} as double precision)
{%- endmacro %}

{% macro redshift__churn_probability_from(column, model_kind) %}
    {%- if model_kind == 'redshift_ml_xgboost' -%}
    cast({{ column }} as double precision)
    {%- else -%}
    case
        when cast({{ column }}.labels[0] as varchar) = 'True.' then cast({{ column }}.probabilities[0] as double precision)
        else cast({{ column }}.probabilities[1] as double precision)
    end
    {%- endif -%}
{%- endmacro %}
