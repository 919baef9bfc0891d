{#- The columns a relation has in the warehouse, as {lowercase name: data type}; empty when the
    relation does not exist (or while dbt parses). Models that read raw tables whose columns
    depend on the documents (a field that never appeared has no column) decide with it what to
    select. Unit tests override it with the columns their fixture holds. -#}
{% macro relation_columns(relation) %}
    {%- set columns = {} -%}
    {%- if execute and load_relation(relation) is not none -%}
        {%- for column in adapter.get_columns_in_relation(relation) -%}
            {%- do columns.update({column.name | lower: column.data_type | lower}) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(columns) }}
{% endmacro %}


{#- The relation itself when it exists; otherwise an empty relation (no rows, no columns) to
    select from, and a warning, so models over a collection this warehouse does not hold build
    empty instead of failing `dbt build`. -#}
{% macro relation_or_empty(relation, columns) %}
    {%- if columns -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- if execute and model.resource_type == 'model' -%}
        {{ log("warning: " ~ relation ~ " does not exist here: " ~ model.name ~ " builds empty", info=true) }}
    {%- endif -%}
    {{ return('(select 1 as no_rows where 1 = 0)') }}
{% endmacro %}
