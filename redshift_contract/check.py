"""Checks on the compiled Redshift SQL that a DuckDB build cannot make.

Each file under `target/redshift_sql/` is parsed with sqlfluff's `redshift` dialect. A finding
names the file (hence the model, test or operation) and the line: unparsable SQL, a function that
Redshift does not have, a DuckDB-only operator, a view that would bind to tables dlt replaces, and
a statement that Redshift refuses inside a transaction block issued inside one.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sqlfluff.core import Linter

# Redshift's SQL functions (from the Redshift Database Developer Guide's function reference),
# lower case, plus keyword-like forms that sqlfluff parses as functions.
REDSHIFT_FUNCTIONS = frozenset(
    """
    abs acos add_months any_value approximate array array_concat array_flatten ascii asin atan atan2
    avg bit_and bit_or bool_and bool_or btrim can_json_parse cardinality cast cbrt ceil ceiling
    char_length character_length charindex checksum chr coalesce concat convert convert_timezone cos
    cot count crc32 cume_dist current_database current_date current_schema current_schemas
    current_setting current_user date_add date_cmp date_cmp_timestamp date_cmp_timestamptz date_part
    date_part_year date_trunc dateadd datediff datepart decode degrees dense_rank dexp difference
    dlog1 dlog10 exp explain_model extract first_value floor fnv_hash from_hex from_varbyte
    get_array_length get_bit getdate greatest has_column_privilege has_database_privilege
    has_schema_privilege has_table_privilege hll hll_cardinality hll_combine hll_combine_sketches
    hll_create_sketch initcap interval_cmp is_array is_bigint is_boolean is_char is_decimal is_float
    is_integer is_object is_scalar is_smallint is_valid_json is_valid_json_array is_varchar
    json_array_length json_extract_array_element_text json_extract_path_text json_parse
    json_serialize json_serialize_to_varbyte json_size json_typeof lag last_day last_value lead
    least left len length listagg ln log lower lpad ltrim md5 median min max mod months_between
    next_day nth_value ntile nullif nvl nvl2 object object_transform octet_length percent_rank
    percentile_cont percentile_disc pg_backend_pid pg_get_late_binding_view_cols pi position pow
    power quote_ident quote_literal radians random rank ratio_to_report regexp_count regexp_instr
    regexp_replace regexp_substr repeat replace replicate reverse right round row_number rpad rtrim
    session_user sha sha1 sha2 sign sin soundex split_part split_to_array sqrt stddev stddev_pop
    stddev_samp strpos strtol subarray substr substring sum sysdate tan text timeofday timestamp_cmp
    timestamp_cmp_date timezone to_char to_date to_hex to_number to_timestamp to_varbyte translate
    trim trunc upper user var_pop var_samp variance version
    """.split()
)

# Statements Redshift refuses inside a transaction block.
OUTSIDE_TRANSACTION = re.compile(
    r"^\s*(create\s+external\s+(schema|table|function)|drop\s+external\s+|alter\s+table\s+\S+\s+append\b"
    r"|vacuum\b|create\s+database\b|drop\s+database\b|create\s+model\b|drop\s+model\b|alter\s+table\s+\S+\s+add\s+partition)",
    re.IGNORECASE,
)
_DUCKDB_OPERATORS = re.compile(r"->>|->|::json\b|\bstruct_pack\s*\(|\blist_\w+\s*\(")
_COMMENTS = re.compile(r"/\*.*?\*/|--[^\n]*", re.DOTALL)
_STRINGS = re.compile(r"'(?:[^']|'')*'")


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _strip_literals(sql: str) -> str:
    """Comments and string literals blanked (newlines kept) so regexes see only SQL."""
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    return _STRINGS.sub(blank, _COMMENTS.sub(blank, sql))


def split_statements(sql: str) -> list[tuple[int, str]]:
    """Statements of a compiled file with their first line (files are written one per `;\\n\\n`)."""
    out, line = [], 1
    for chunk in re.split(r";\n\n", sql):
        if chunk.strip():
            lead = len(chunk) - len(chunk.lstrip("\n"))
            out.append((line + lead, chunk.strip().rstrip(";")))
        line += chunk.count("\n") + 2
    return out


_MODEL_SETTINGS = re.compile(r"(\bsettings\s*\()([^)]*)(\))", re.IGNORECASE)


_NESTED_TYPE = re.compile(r"\b(struct|array|map)<[^<>]*>", re.IGNORECASE)
_IDENT = r"[a-z_][a-z0-9_]*"
# sqlfluff has no grammar for Spectrum's ALTER TABLE ... ADD PARTITION: this one is checked here.
_ADD_PARTITIONS = re.compile(
    rf"^\s*alter\s+table\s+{_IDENT}\.{_IDENT}\s+add\s+(if\s+not\s+exists\s+)?"
    rf"(partition\s*\(\s*{_IDENT}\s*=\s*'[^']*'(\s*,\s*{_IDENT}\s*=\s*'[^']*')*\s*\)\s*location\s+'s3://[^']+'\s*)+$",
    re.IGNORECASE,
)


def _for_sqlfluff(statement: str, bare: str) -> str:
    """Work around two gaps of sqlfluff's Redshift grammar, for parsing only and keeping line
    numbers: CREATE MODEL's SETTINGS are listed there without the commas Redshift requires
    (S3_BUCKET 'b', MAX_RUNTIME 5400), and external tables may not have Spectrum's nested types
    (struct<...>, array<...>, map<...>), which are checked to be well formed and then parsed as SUPER."""
    if re.match(r"\s*create\s+model\b", bare, re.IGNORECASE):
        return _MODEL_SETTINGS.sub(lambda m: m.group(1) + m.group(2).replace(",", " ") + m.group(3), statement)
    if re.match(r"\s*create\s+external\s+table\b", bare, re.IGNORECASE):
        previous = None
        while previous != statement:  # innermost first, until no nested type is left
            previous, statement = statement, _NESTED_TYPE.sub("super", statement)
    return statement


# CREATE MODEL's grammar (the Redshift reference): AUTO ON takes Autopilot's objectives and no
# hyperparameters; AUTO OFF trains XGBoost with an XGBoost objective and NUM_ROUND; both need S3_BUCKET.
_AUTO_ON_MODEL_TYPES = {"xgboost", "mlp", "linear_learner"}
_AUTO_ON_OBJECTIVES = {"mse", "accuracy", "f1", "f1macro", "auc"}
_XGBOOST_OBJECTIVES = {"reg:squarederror", "reg:squaredlogerror", "reg:logistic", "reg:pseudohubererror", "reg:tweedie",
                       "binary:logistic", "binary:hinge", "multi:softmax"}
_MODEL_CLAUSE = {name: re.compile(pattern, re.IGNORECASE | re.DOTALL) for name, pattern in {
    "auto_off": r"\bauto\s+off\b",
    "model_type": r"\bmodel_type\s+(\w+)",
    "problem_type": r"\bproblem_type\s+(\w+)",
    "objective": r"\bobjective\s+'([^']*)'",
    "hyperparameters": r"\bhyperparameters\s+default(?:\s+except\s*\(([^)]*)\))?",
    "settings": r"\bsettings\s*\(([^)]*)\)",
}.items()}


def create_model_findings(name: str, line: int, statement: str) -> list[Finding]:
    """CREATE MODEL clauses that its grammar does not allow together (the parser accepts them)."""
    found = {clause: pattern.search(statement) for clause, pattern in _MODEL_CLAUSE.items()}
    problems = []
    settings = found["settings"].group(1).lower() if found["settings"] else ""
    if "s3_bucket" not in settings:
        problems.append("CREATE MODEL needs SETTINGS (S3_BUCKET '...')")
    model_type = found["model_type"].group(1).lower() if found["model_type"] else None
    objective = found["objective"].group(1) if found["objective"] else None
    if found["auto_off"]:
        if model_type != "xgboost":
            problems.append("AUTO OFF needs MODEL_TYPE XGBOOST")
        if found["problem_type"]:
            problems.append("AUTO OFF takes no PROBLEM_TYPE")
        if objective is None or objective.lower() not in _XGBOOST_OBJECTIVES:
            problems.append(f"AUTO OFF needs an XGBoost OBJECTIVE (got {objective!r})")
        parameters = found["hyperparameters"].group(1) if found["hyperparameters"] else None
        if not parameters or not re.search(r"\bnum_round\s+'\d+'", parameters, re.IGNORECASE):
            problems.append("AUTO OFF needs HYPERPARAMETERS DEFAULT EXCEPT (NUM_ROUND '...')")
    else:
        if found["hyperparameters"]:
            problems.append("HYPERPARAMETERS belong to AUTO OFF")
        if model_type is not None and model_type not in _AUTO_ON_MODEL_TYPES:
            problems.append(f"AUTO ON MODEL_TYPE must be one of {sorted(_AUTO_ON_MODEL_TYPES)} (got {model_type!r})")
        if objective is not None and objective.lower() not in _AUTO_ON_OBJECTIVES:
            problems.append(f"AUTO ON OBJECTIVE must be one of MSE, Accuracy, F1, F1Macro, AUC (got {objective!r})")
    return [Finding(name, line, problem) for problem in problems]


def check_sql(name: str, sql: str, extra_functions: Iterable[str] = ()) -> list[Finding]:
    """All findings for one compiled file."""
    findings: list[Finding] = []
    known = REDSHIFT_FUNCTIONS | {f.lower() for f in extra_functions}
    linter = Linter(dialect="redshift")
    in_transaction = False
    for first_line, statement in split_statements(sql):
        offset = first_line - 1
        bare = _strip_literals(statement)
        head = bare.strip().lower()
        if head in ("begin", "start transaction"):
            in_transaction = True
            continue
        if head in ("commit", "end", "rollback"):
            in_transaction = False
            continue
        parts = [p for p in bare.split(";") if p.strip()]
        if any(re.match(r"\s*truncate\b", p, re.IGNORECASE) for p in parts) and (in_transaction or len(parts) > 1):
            findings.append(Finding(name, first_line, "TRUNCATE commits the open transaction on Redshift: use DELETE FROM to keep the change atomic"))
        if in_transaction and OUTSIDE_TRANSACTION.match(bare):
            findings.append(Finding(name, first_line, f"'{head.split(chr(10))[0][:60]}' cannot run inside a transaction block"))
        if re.match(r"\s*alter\s+table\s+\S+\s+add\s+(if\s+not\s+exists\s+)?partition\b", bare, re.IGNORECASE):
            if not _ADD_PARTITIONS.match(_COMMENTS.sub(" ", statement).strip()):
                findings.append(Finding(name, first_line, "malformed ALTER TABLE ... ADD PARTITION for Spectrum"))
            continue
        if re.match(r"\s*create\s+model\b", bare, re.IGNORECASE):
            findings.extend(create_model_findings(name, first_line, _COMMENTS.sub(" ", statement)))
        parsed = linter.parse_string(_for_sqlfluff(statement, bare))
        for err in parsed.violations:
            findings.append(Finding(name, offset + (err.line_no or 1), f"unparsable for Redshift (sqlfluff): {err.desc()}"))
        if parsed.tree is None:
            continue
        for seg in parsed.tree.recursive_crawl("function_name"):
            fn = seg.raw.strip().strip('"').lower().rsplit(".", 1)[-1]
            if fn not in known and not fn.startswith("st_"):
                findings.append(Finding(name, offset + seg.pos_marker.line_no, f"function '{fn}' is not a Redshift function"))
        for m in _DUCKDB_OPERATORS.finditer(bare):
            line = offset + 1 + bare.count("\n", 0, m.start())
            findings.append(Finding(name, line, f"DuckDB-only syntax {m.group(0).strip()!r}"))
        if re.match(r"\s*create\s+(or\s+replace\s+)?view\b", bare, re.IGNORECASE) and not re.search(
            r"with\s+no\s+schema\s+binding\s*$", bare, re.IGNORECASE
        ):
            findings.append(Finding(name, first_line, "view is not late-binding: raw tables are replaced by loads, set bind: false"))
    return findings


def check_directory(root: Path, extra_functions: Iterable[str] = ()) -> list[Finding]:
    """Findings for every file; functions the project creates (index.json `functions`) are known."""
    index = root / "index.json"
    if index.exists():
        extra_functions = [*extra_functions, *json.loads(index.read_text()).get("functions", [])]
    findings: list[Finding] = []
    for path in sorted(root.rglob("*.sql")):
        findings.extend(check_sql(str(path.relative_to(root)), path.read_text(), extra_functions))
    return findings


def main(argv: list[str] | None = None) -> int:
    root = Path((argv or sys.argv[1:] or ["target/redshift_sql"])[0])
    findings = check_directory(root)
    for f in findings:
        print(f, file=sys.stderr)
    files = len(list(root.rglob("*.sql")))
    print(f"checked {files} files of Redshift SQL: {len(findings)} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
