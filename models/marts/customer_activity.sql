{#- The flat churn table of the Redshift ML tutorial: exactly these 23 columns, in this order. A
    missing value stays null (and fails the not_null tests), never becomes 'no' or 'False.'. -#}
{{ config(sort='record_date') }}

with

customers as (

    select * from {{ ref('int_customer_activity__tutorial_columns') }}

),

final as (

    select
        state,
        account_length,
        area_code,
        phone,
        intl_plan,
        vmail_plan,
        vmail_message,
        day_mins,
        day_calls,
        day_charge,
        total_charge,
        eve_mins,
        eve_calls,
        eve_charge,
        night_mins,
        night_calls,
        night_charge,
        intl_mins,
        intl_calls,
        intl_charge,
        cust_serv_calls,
        churn,
        record_date

    from customers

)

select * from final
