{#- `dbt run-operation stage_external_sources [--args '{select: customer_activity, load_dates: [...]}']`

    For every source table with an `external:` block (or the selected ones): on Redshift, creates
    the external schema (data catalog database, IAM role, CREATE EXTERNAL DATABASE IF NOT
    EXISTS), creates each external table when it is missing (or with --vars '{ext_full_refresh:
    true}', drops and recreates it), and adds the load-date partitions in batches with ALTER
    TABLE ... ADD IF NOT EXISTS, so existing tables keep their data and new dates just appear.
    Every statement runs on its own, outside a transaction (Redshift refuses external DDL inside
    one). On DuckDB, each table is a view over `read_json` of the same files (a folder or S3
    through httpfs), whose hive partitions appear without restaging. -#}
{% macro stage_external_sources(select=none, load_dates=none) %}
    {%- set selected = [] -%}
    {%- for node in graph.sources.values() -%}
        {%- if node.external and node.external.location and (select is none or node.name in (select | string).split(',') or node.source_name ~ '.' ~ node.name in (select | string).split(',')) -%}
            {%- do selected.append(node) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if selected | length == 0 -%}
        {{ exceptions.raise_compiler_error("stage_external_sources: no external source matches '" ~ select ~ "'") }}
    {%- endif -%}
    {%- set full_refresh = var('ext_full_refresh', false) -%}
    {#- run-operation skips on-run-start hooks: set up reading the landing zone here too -#}
    {%- set setup = atlas_analytics.landing_setup() | trim -%}
    {%- if setup -%}
        {%- do atlas_analytics.run_outside_transaction(setup) -%}
    {%- endif -%}
    {%- for node in selected -%}
        {%- do atlas_analytics.stage_external_source(node, full_refresh, load_dates) -%}
    {%- endfor -%}
{% endmacro %}


{% macro stage_external_source(node, full_refresh, load_dates) %}
    {%- do atlas_analytics.check_external_format(node) -%}
    {%- set statements = adapter.dispatch('external_table_statements', 'atlas_analytics')(node, full_refresh, load_dates) -%}
    {%- for statement in statements -%}
        {%- do atlas_analytics.run_outside_transaction(statement) -%}
    {%- endfor -%}
    {{ log("staged external table " ~ node.schema ~ "." ~ node.identifier ~ " (" ~ statements | length ~ " statements)", info=true) }}
{% endmacro %}


{#- on-run-start, when the marts read the landing zone (atlas_source: spectrum): every external
    source is staged for the last `landing_recent_days` load dates (default 7), so that whatever
    schedules `dbt build` (the workflow, cron, Dagster) sees the partitions ingestion landed since
    without a separate step; missing tables are created, existing ones only gain partitions
    (ADD IF NOT EXISTS). After a longer gap, run stage_external_sources (30 days by default).
    Redshift only: DuckDB's views see new folders by themselves (and a view over a folder with no
    file yet would fail). -#}
{% macro stage_recent_external_sources() %}
    {{- return(adapter.dispatch('stage_recent_external_sources', 'atlas_analytics')()) -}}
{% endmacro %}

{% macro default__stage_recent_external_sources() %}{{ return('') }}{% endmacro %}

{% macro redshift__stage_recent_external_sources() %}
    {%- if execute and var('atlas_source', 'loaded') == 'spectrum' -%}
        {%- set days = var('landing_recent_days', 7) | int -%}
        {%- set today = modules.datetime.datetime.utcnow().date() -%}
        {%- set dates = [] -%}
        {%- for offset in range(days - 1, -1, -1) -%}
            {%- do dates.append((today - modules.datetime.timedelta(days=offset)).isoformat()) -%}
        {%- endfor -%}
        {%- for node in graph.sources.values() if node.external and node.external.location -%}
            {%- do atlas_analytics.stage_external_source(node, false, dates) -%}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}


{#- Load dates to register as partitions: the given list, or every day from var
    landing_start_date (default 30 days ago) to today, UTC. -#}
{% macro landing_load_dates(load_dates=none) %}
    {%- if load_dates is not none -%}
        {%- set dates = load_dates -%}
    {%- else -%}
        {%- set today = modules.datetime.datetime.utcnow().date() -%}
        {%- set start = var('landing_start_date', (today - modules.datetime.timedelta(days=30)).isoformat()) -%}
        {%- set first = modules.datetime.date.fromisoformat(start | string) -%}
        {%- set dates = [] -%}
        {%- for offset in range((today - first).days + 1) -%}
            {%- do dates.append((first + modules.datetime.timedelta(days=offset)).isoformat()) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for value in dates -%}
        {%- if not modules.re.match('^\d{4}-\d{2}-\d{2}$', value | string) -%}
            {{ exceptions.raise_compiler_error("load dates must be YYYY-MM-DD, got '" ~ value ~ "'") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(dates) }}
{% endmacro %}


{#- The landing zone's external tables read gzip JSON lines, where nested data are objects that
    Spectrum types as struct / array. (Parquet landing files hold nested data as JSON text, which
    these column types would not read.) -#}
{% macro check_external_format(node) %}
    {%- if (node.external.file_format or 'jsonl') != 'jsonl' -%}
        {{ exceptions.raise_compiler_error("external source " ~ node.source_name ~ "." ~ node.name ~ ": file_format must be jsonl "
            ~ "(land with --destination s3 --file-format jsonl); parquet landing files keep nested data as JSON text") }}
    {%- endif -%}
{% endmacro %}


{% macro external_location(node) %}
    {%- set location = node.external.location | trim -%}
    {%- if not modules.re.match("^[A-Za-z0-9:/._=-]+$", location) -%}
        {{ exceptions.raise_compiler_error("invalid external location '" ~ location ~ "'") }}
    {%- endif -%}
    {{ return(location.rstrip('/')) }}
{% endmacro %}


{% macro default__external_table_statements(node, full_refresh, load_dates) %}
    {{ exceptions.raise_compiler_error("external tables are implemented for redshift and duckdb, not " ~ target.type) }}
{% endmacro %}


{% macro redshift__external_table_statements(node, full_refresh, load_dates) %}
    {%- set schema = atlas_analytics.ml_identifier(node.schema, 'external schema') -%}
    {%- set table = atlas_analytics.ml_identifier(node.identifier, 'external table') -%}
    {%- set location = atlas_analytics.external_location(node) -%}
    {%- set iam_role = var('spectrum_iam_role', env_var('REDSHIFT_IAM_ROLE', 'arn:aws:iam::123456789012:role/spectrum')) -%}
    {%- if not modules.re.match('^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$', iam_role) -%}
        {{ exceptions.raise_compiler_error("spectrum_iam_role must be an IAM role ARN") }}
    {%- endif -%}
    {%- set catalog_database = atlas_analytics.ml_identifier(var('spectrum_catalog_database', schema), 'data catalog database') -%}
    {%- set statements = [] -%}
    {%- do statements.append(
        "create external schema if not exists " ~ schema ~ " from data catalog database '" ~ catalog_database
        ~ "' iam_role '" ~ iam_role ~ "' create external database if not exists"
    ) -%}
    {%- set existing = adapter.get_relation(database=target.database, schema=schema, identifier=table) if execute else none -%}
    {%- if existing is not none and full_refresh -%}
        {%- do statements.append("drop table " ~ schema ~ "." ~ table) -%}
    {%- endif -%}
    {%- if existing is none or full_refresh -%}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() -%}
            {#- quoted: a collection's field may be a word Redshift reserves (`limit`, `open`) -#}
            {%- do columns.append('"' ~ atlas_analytics.ml_identifier(column.name | lower, 'column') ~ '" ' ~ atlas_analytics.external_column_type(column.data_type)) -%}
        {%- endfor -%}
        {%- set partitions = [] -%}
        {%- for p in node.external.partitions or [] -%}
            {%- do partitions.append(atlas_analytics.ml_identifier(p.name, 'partition') ~ " " ~ atlas_analytics.spectrum_type(p.data_type)) -%}
        {%- endfor -%}
        {%- set ddl -%}
            create external table {{ schema }}.{{ table }} (
                {{ columns | join(',\n                ') }}
            )
            {% if partitions %}partitioned by ({{ partitions | join(', ') }}){% endif %}
            row format {{ node.external.row_format }}
            stored as textfile
            location '{{ location }}/'
            {% if node.external.table_properties %}table properties {{ node.external.table_properties }}{% endif %}
        {%- endset -%}
        {%- do statements.append(ddl) -%}
    {%- endif -%}
    {%- if node.external.partitions -%}
        {%- set name = node.external.partitions[0].name -%}
        {%- for batch in atlas_analytics.landing_load_dates(load_dates) | batch(100) -%}
            {%- set parts = [] -%}
            {%- for value in batch -%}
                {%- do parts.append("partition (" ~ name ~ "='" ~ value ~ "') location '" ~ location ~ "/" ~ name ~ "=" ~ value ~ "/'") -%}
            {%- endfor -%}
            {%- do statements.append("alter table " ~ schema ~ "." ~ table ~ " add if not exists " ~ parts | join(' ')) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(statements) }}
{% endmacro %}


{% macro duckdb__external_table_statements(node, full_refresh, load_dates) %}
    {%- set schema = atlas_analytics.ml_identifier(node.schema, 'schema') -%}
    {%- set table = atlas_analytics.ml_identifier(node.identifier, 'table') -%}
    {%- set location = atlas_analytics.external_location(node) -%}
    {%- set columns = [] -%}
    {%- for column in node.columns.values() -%}
        {%- do columns.append("'" ~ atlas_analytics.ml_identifier(column.name | lower, 'column') ~ "': '" ~ atlas_analytics.external_column_type(column.data_type) ~ "'") -%}
    {%- endfor -%}
    {%- set reader -%}
        read_json('{{ location }}/*/*.jsonl.gz', format = 'newline_delimited', compression = 'gzip',
                  columns = { {{- columns | join(', ') -}} }, hive_partitioning = true, hive_types = {'load_date': 'DATE'})
    {%- endset -%}
    {{ return([
        "create schema if not exists " ~ schema,
        "create or replace view " ~ schema ~ "." ~ table ~ " as select * from " ~ reader,
    ]) }}
{% endmacro %}


{#- Spectrum column types, validated: scalars, struct<...>, array<...>. -#}
{% macro spectrum_type(data_type) %}
    {%- set value = (data_type | string | trim | lower) -%}
    {%- if not modules.re.match('^[a-z0-9_<>:,() ]+$', value) -%}
        {{ exceptions.raise_compiler_error("invalid external column type '" ~ data_type ~ "'") }}
    {%- endif -%}
    {{ return(value) }}
{% endmacro %}

{#- The column type an external table declares for a source column's Spectrum type: the type
    itself on Redshift; on DuckDB the type that reads the same JSON value (nested types stay JSON,
    so the staging models flatten them with the same json_value macros as the loaded tables). -#}
{% macro external_column_type(data_type) %}
    {{- return(adapter.dispatch('external_column_type', 'atlas_analytics')(data_type)) -}}
{% endmacro %}

{% macro default__external_column_type(data_type) %}
    {{- return(atlas_analytics.spectrum_type(data_type)) -}}
{% endmacro %}

{% macro duckdb__external_column_type(data_type) %}
    {%- set value = atlas_analytics.spectrum_type(data_type) -%}
    {%- if value.startswith('struct<') or value.startswith('array<') or value.startswith('map<') -%}
        {{ return('JSON') }}
    {%- elif value.startswith('varchar') or value.startswith('char') or value == 'string' -%}
        {{ return('VARCHAR') }}
    {%- elif value in ('int', 'integer', 'int4') -%}
        {{ return('INTEGER') }}
    {%- elif value in ('bigint', 'int8') -%}
        {{ return('BIGINT') }}
    {%- elif value in ('double precision', 'float8', 'float', 'double') -%}
        {{ return('DOUBLE') }}
    {%- elif value in ('boolean', 'bool') -%}
        {{ return('BOOLEAN') }}
    {%- else -%}
        {{ return(value | upper) }}
    {%- endif -%}
{% endmacro %}


{#- Runs one statement without opening a transaction: Redshift refuses external DDL, CREATE MODEL
    and DROP MODEL inside a transaction block. -#}
{% macro run_outside_transaction(sql) %}
    {%- do adapter.dispatch('end_open_transaction', 'atlas_analytics')() -%}
    {%- call statement('outside_transaction', fetch_result=False, auto_begin=False) -%}
        {{ sql }}
    {%- endcall -%}
{% endmacro %}


{#- A catalog lookup may have left a transaction open on Redshift: end it (a COMMIT without one
    only warns there). DuckDB has nothing to end. -#}
{% macro default__end_open_transaction() %}{% endmacro %}

{% macro redshift__end_open_transaction() %}
    {%- call statement('end_transaction', fetch_result=False, auto_begin=False) -%}
        commit
    {%- endcall -%}
{% endmacro %}
