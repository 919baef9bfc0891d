{#- Fails when the model's row count differs from the live (not soft-deleted) rows of the
    customer_activity staging model that feeds it (loaded raw table or landing zone). -#}
{% test matches_live_staging_rows(model) %}

with model_rows as (
    select count(*) as row_count from {{ model }}
),

staging_rows as (
    select count(*) as row_count from {{ customer_activity_staging() }}
    where deleted_at is null
)

select
    model_rows.row_count as model_row_count,
    staging_rows.row_count as staging_row_count
from model_rows
cross join staging_rows
where model_rows.row_count <> staging_rows.row_count

{% endtest %}
