{#- Fails with one row per customer whose number of rows in the model differs from the customer's
    service-call count in dim_customers (for customers whose document lists its calls: the
    tutorial's flat rows only count them). -#}
{% test service_calls_match_customer_count(model) %}

with calls as (
    select customer_activity_id, count(*) as calls
    from {{ model }}
    group by customer_activity_id
),

customers as (
    select customer_activity_id, service_call_count, lists_service_calls
    from {{ ref('dim_customers') }}
)

select
    customers.customer_activity_id,
    customers.service_call_count,
    coalesce(calls.calls, 0) as calls
from customers
left join calls on calls.customer_activity_id = customers.customer_activity_id
where
    customers.lists_service_calls
    and customers.service_call_count <> coalesce(calls.calls, 0)

{% endtest %}
