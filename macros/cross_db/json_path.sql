{#- The keys of a JSON path: a dotted string ('usage.day.minutes') or a list of keys, which may
    hold capitals, dots, spaces and dashes (['shipping', 'zip.code']); an empty list is the value
    itself. Anything else is refused: keys reach SQL as identifiers in Redshift's navigation. -#}
{% macro json_path_keys(path) %}
    {%- set keys = path.split('.') if path is string else path -%}
    {%- for key in keys -%}
        {%- if not modules.re.match('^[A-Za-z0-9_ .-]{1,127}$', key) -%}
            {{ exceptions.raise_compiler_error("invalid JSON path " ~ path ~ ": key '" ~ key ~ "' must be letters, digits, '_', '.', '-' or spaces") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(keys) }}
{% endmacro %}


{#- The path as DuckDB's JSONPath ('$.usage.day', '$."zip.code"'): keys other than lowercase
    identifiers are quoted. -#}
{% macro duckdb_json_path(keys) %}
    {%- set parts = ['$'] -%}
    {%- for key in keys -%}
        {%- do parts.append(key if modules.re.match('^[a-z_][a-z0-9_]*$', key) else '"' ~ key ~ '"') -%}
    {%- endfor -%}
    {{ return(parts | join('.')) }}
{% endmacro %}


{#- The path as Redshift's SUPER navigation ('.usage.day', '."zipCode"'): keys other than
    lowercase identifiers are quoted, which keeps their case only where the session has
    enable_case_sensitive_identifier on (README: your own collections). -#}
{% macro redshift_super_path(keys) %}
    {%- set parts = [] -%}
    {%- for key in keys -%}
        {%- do parts.append(key if modules.re.match('^[a-z_][a-z0-9_]*$', key) else '"' ~ key ~ '"') -%}
    {%- endfor -%}
    {{ return(('.' ~ parts | join('.')) if parts else '') }}
{% endmacro %}
