{#- on-run-start: lets DuckDB read an S3 landing zone. Loads httpfs and aws from the folder the
    PyPI packages duckdb-ext-httpfs / duckdb-ext-aws install into ($DUCKDB_EXTENSION_DIRECTORY;
    nothing is downloaded) and makes an S3 secret from the AWS default credential chain, so no
    key appears in SQL or logs. Runs only when the landing zone is read (atlas_source: spectrum)
    and lives on S3. Nothing to do on Redshift: Spectrum reads S3 with the external schema's role. -#}
{% macro landing_setup() %}
    {{- return(adapter.dispatch('landing_setup', 'atlas_analytics')()) -}}
{% endmacro %}

{% macro default__landing_setup() %}{% endmacro %}

{% macro duckdb__landing_setup() %}
    {%- if var('atlas_source', 'loaded') == 'spectrum' and var('landing_url', 's3://').startswith('s3://') -%}
        {%- set extension_directory = env_var('DUCKDB_EXTENSION_DIRECTORY', '') -%}
        {%- set endpoint = env_var('AWS_ENDPOINT_URL_S3', env_var('AWS_ENDPOINT_URL', '')) -%}
        {%- if not extension_directory or not modules.re.match("^[A-Za-z0-9/._-]+$", extension_directory) -%}
            {{ exceptions.raise_compiler_error("set DUCKDB_EXTENSION_DIRECTORY to the duckdb_ext/extensions folder (the Makefile does)") }}
        {%- endif -%}
        {%- if endpoint and not modules.re.match("^https?://[A-Za-z0-9.:-]+/?$", endpoint) -%}
            {{ exceptions.raise_compiler_error("AWS_ENDPOINT_URL must be http(s)://host[:port]") }}
        {%- endif -%}
        set global extension_directory = '{{ extension_directory }}';
        load httpfs;
        load aws;
        create or replace secret atlas_landing (
            type s3,
            provider credential_chain,
            region '{{ env_var("AWS_DEFAULT_REGION", env_var("AWS_REGION", "us-east-1")) | replace("'", "") }}'
            {%- if endpoint %},
            endpoint '{{ endpoint.split("://")[1].rstrip("/") }}',
            url_style 'path',
            use_ssl {{ 'true' if endpoint.startswith('https') else 'false' }}
            {%- endif %}
        )
    {%- endif -%}
{% endmacro %}
