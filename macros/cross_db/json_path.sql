{#- Splits a dotted JSON path ('usage.day.minutes') into keys, refusing anything that is not a
    plain lowercase identifier: keys reach SQL unquoted in Redshift's PartiQL navigation. -#}
{% macro json_path_keys(path) %}
    {%- set keys = path.split('.') -%}
    {%- for key in keys -%}
        {%- if not modules.re.match('^[a-z_][a-z0-9_]*$', key) -%}
            {{ exceptions.raise_compiler_error("invalid JSON path '" ~ path ~ "': key '" ~ key ~ "' must be lowercase letters, digits and underscores") }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(keys) }}
{% endmacro %}
