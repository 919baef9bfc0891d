{#- Fails when the model and `compare_model` differ in row count; returns one row with both counts.
    A compare_model that does not exist counts 0 rows (a collection this warehouse does not hold). -#}
{% test equal_row_count(model, compare_model) %}

with model_rows as (
    select count(*) as row_count from {{ model }}
),

compare_rows as (
    select count(*) as row_count from {{ relation_or_empty(compare_model, relation_columns(compare_model)) }}
)

select
    model_rows.row_count as model_row_count,
    compare_rows.row_count as compare_row_count
from model_rows
cross join compare_rows
where model_rows.row_count <> compare_rows.row_count

{% endtest %}
