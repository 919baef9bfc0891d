"""What dbt models a collection gets, decided from its schema file: the staging model of the raw
table (nested objects flattened into one column per scalar path), one model per array (one row
per element) and one per object keyed by data (one row per key), each with its columns, their
SQL expressions and descriptions. Rendering them as files is `render`'s job."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ingestion.errors import ConfigError
from ingestion.mongo.bson_types import BIGINT, BOOL, DECIMAL, DOUBLE, JSON, TEXT, TIMESTAMP
from ingestion.naming import check_length, column_name, table_name
from ingestion.schema.discovery import KIND_OF_TYPE, planned_kind, split_path

DEFAULT_MAX_DEPTH = 3
# SQL types of scalar values read out of JSON, by column kind (the same on DuckDB and Redshift).
SQL_TYPE = {TEXT: "varchar(65535)", BIGINT: "bigint", DOUBLE: "double precision", DECIMAL: "decimal(38, 9)",
            BOOL: "boolean", TIMESTAMP: "timestamptz"}
# Keys a model can name in a JSON path on both warehouses (quoted where they are not lowercase).
_PATH_KEY = re.compile(r"^[A-Za-z0-9_ .-]{1,127}$")
# Words DuckDB or Redshift reserve: a column of that name is quoted wherever the models name it
# (`duckdb_keywords()` where reserved, and Redshift's reserved words).
RESERVED_WORDS = frozenset("""
    aes128 aes256 all allowoverwrite analyse analyze and any array as asc asymmetric authorization az64 backup
    between binary blanksasnull both bytedict bzip2 case cast check collate column constraint create credentials
    cross current_date current_time current_timestamp current_user current_user_id default deferrable deflate
    defrag delta delta32k desc describe disable distinct do else emptyasnull enable encode encrypt encryption end
    except explicit false fetch for foreign freeze from full globaldict256 globaldict64k grant group gzip having
    identity ignore ilike in initially inner intersect interval into is isnull join lambda language lateral leading
    left like limit localtime localtimestamp lun luns lzo lzop minus mostly16 mostly32 mostly8 natural new not
    notnull null nulls off offline offset oid old on only open or order outer overlaps parallel partition percent
    permissions pivot pivot_longer pivot_wider placing primary qualify raw readratio recover references rejectlog
    resort respect restore returning right select session_user show similar snapshot some summarize symmetric
    sysdate system table tag tdes text255 text32k then timestamp to top trailing true truncatecolumns union unique
    unnest unpivot user using variadic verbose wallet when where window with without
""".split())
# A variant column folds into its field's typed column when every value converts exactly.
_FOLDS_INTO = {DOUBLE: {BIGINT}, DECIMAL: {BIGINT}, TEXT: {BIGINT, DOUBLE, DECIMAL, BOOL}}
# Inside JSON, the numbers a cast reads exactly on both warehouses (a SUPER number cast to text is not one).
_JSON_READS_AS = {DOUBLE: {BIGINT}, DECIMAL: {BIGINT}}


@dataclass
class Node:
    """One path of the schema file, with its children: object keys, array elements, data keys."""

    key: str
    path: str
    types: list[str]
    presence: float
    entry: dict[str, Any]
    children: dict[str, "Node"] = field(default_factory=dict)

    @property
    def kinds(self) -> set[str]:
        return {KIND_OF_TYPE[t] for t in self.types if t in KIND_OF_TYPE}

    @property
    def is_object(self) -> bool:
        return "object" in self.types and not self.keyed_by_data

    @property
    def keyed_by_data(self) -> bool:
        return bool(self.entry.get("keyed_by_data"))

    @property
    def elements(self) -> "Node | None":
        return self.children.get("[]")

    @property
    def data_values(self) -> "Node | None":
        return self.children.get("*")

    def named_children(self) -> list["Node"]:
        return [c for k, c in self.children.items() if k not in ("[]", "*")]

    def describe(self) -> str:
        """`path`: BSON types, and how often the latest sample held it."""
        types = ", ".join(t for t in self.types if t != "null") or "no value seen"
        text = f"`{self.path}`: {types}; in {self.presence:.0%} of sampled documents"
        holder = self.elements if self.elements is not None else self
        keys = [c.key for c in holder.named_children()]
        if keys and not self.keyed_by_data:
            shown = ", ".join(f"`{k}`" for k in keys[:8]) + (", ..." if len(keys) > 8 else "")
            text += f"; {'elements hold' if holder is not self else 'holds'} {shown}"
        elif holder is not self and holder.types:
            text += f"; elements: {', '.join(t for t in holder.types if t != 'null')}"
        if self.keyed_by_data:
            examples = ", ".join(f"`{k}`" for k in self.entry.get("key_examples") or [])
            text += f"; keyed by data ({self.entry.get('distinct_keys', 0)} distinct keys, e.g. {examples})"
        return text


@dataclass
class Column:
    name: str
    expression: str  # SQL (Jinja allowed) that reads it from the model's input
    description: str
    group: str  # ids, <object>, arrays, booleans, timestamps, load metadata ...
    tests: list[str] = field(default_factory=list)
    data_type: str | None = None  # of a landing-zone external table's column (Spectrum DDL)
    landing: str | None = None  # the expression over the landing zone's external table (`landed`)


@dataclass
class Model:
    """One generated model: what it reads (the source table, or another generated model and its
    unnest), and the columns it selects."""

    name: str
    description: str
    columns: list[Column]
    reads: str  # "source" or the name of the generated model it unnests
    unnest_column: str | None = None  # column of `reads` holding the array or keyed object
    unnest_kind: str | None = None  # "array" or "object"
    key_columns: list[str] = field(default_factory=list)  # together unique: the grain
    # unnests from the landed document to this row; None: the landing zone has no rows of it
    landed_from: list[str] | None = field(default_factory=list)


@dataclass
class CollectionLayout:
    database: str
    collection: str
    table: str
    source_name: str
    models: list[Model]
    source_columns: list[Column]  # the raw table's columns, for the source entry
    landing_columns: list[Column] = field(default_factory=list)  # the landing zone's external table
    skipped: list[str] = field(default_factory=list)  # paths kept inside their parent JSON, and why


def build_tree(content: dict[str, Any]) -> Node:
    """The schema file's paths as a tree (parents come before children in the file)."""
    root = Node("", "", ["object"], 1.0, {})
    for entry in content.get("fields") or []:
        if not isinstance(entry, dict) or "path" not in entry:
            continue
        steps = split_path(str(entry["path"]))
        parent = root
        for step in steps[:-1]:
            parent = parent.children.setdefault(step, Node(step, "", ["object"], 0.0, {}))
        node = parent.children.get(steps[-1])
        types = [str(t) for t in entry.get("types") or []]
        if node is None:
            parent.children[steps[-1]] = Node(steps[-1], str(entry["path"]), types, float(entry.get("presence") or 0.0), entry)
        else:  # created as a parent before its own entry (files written by hand)
            node.path, node.types, node.presence, node.entry = str(entry["path"]), types, float(entry.get("presence") or 0.0), entry
    return root


def plan_collection(content: dict[str, Any], max_depth: int = DEFAULT_MAX_DEPTH) -> CollectionLayout:
    """The models of one collection, from its schema file's content."""
    database, collection = str(content["database"]), str(content["collection"])
    table = str(content.get("table") or table_name(collection))
    source_name = column_name(database)
    layout = CollectionLayout(database, collection, table, source_name, [], [])
    root = build_tree(content)
    planner = _Planner(layout, max_depth)
    planner.staging(root)
    layout.landing_columns = landing_columns(root, layout.source_columns)
    declared = {c.name for c in layout.landing_columns}
    for node in root.named_children():
        column = node.entry.get("column") or column_name(node.key)
        if node.key != "_id" and column not in declared:
            layout.skipped.append(f"{node.path}: not in the landing zone's external table (no one Spectrum type "
                                  "fits its values)")
    return layout


# -- the landing zone's external table ------------------------------------------------------------

# Spectrum types of the landing files' values, by column kind: gzip JSON lines where dates are
# ISO 8601 text and decimals are strings (both read by a cast in the staging model).
SPECTRUM_TYPE = {TEXT: "varchar(65535)", BIGINT: "bigint", DOUBLE: "double precision", DECIMAL: "decimal(38,9)",
                 BOOL: "boolean", TIMESTAMP: "varchar(40)"}
# Struct field names Spectrum can declare (the catalog keeps them lowercase; the JSON SerDe
# matches keys case-insensitively).
_STRUCT_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,126}$")


def landing_columns(root: Node, source_columns: list[Column]) -> list[Column]:
    """The external table over the landing files: the raw table's columns, nested ones typed as
    Spectrum struct / array / map from the discovered paths (what a Glue crawler would infer)."""
    fields = {c.entry.get("column") or column_name(c.key): c for c in root.named_children()}
    columns = []
    for column in source_columns:
        if column.name == "_id":
            data_type = "varchar(512)"
        elif column.name in ("_atlas_extracted_at", "_dlt_load_id"):
            data_type = "varchar(40)"
        elif column.name == "_dlt_id":
            continue  # not in the landing files
        elif column.name in fields:
            node = fields[column.name]
            kind = node.entry.get("column_type")
            data_type = spectrum_type(node) if kind == JSON or kind is None else SPECTRUM_TYPE.get(kind, "varchar(65535)")
        else:  # a variant column: <column>__v_<kind>
            data_type = SPECTRUM_TYPE.get(column.name.rsplit("__v_", 1)[-1], "varchar(65535)")
        if data_type is not None:
            columns.append(Column(column.name, "", column.description, column.group, [], data_type))
    names = {c.name for c in columns}
    columns += [Column(name, "", description, "load metadata", [], data_type)
                for name, data_type, description in CDC_LANDING_COLUMNS if name not in names]
    return columns


# What CDC lands besides the documents, read by macros/spectrum/landed_current.sql.
CDC_LANDING_COLUMNS = (
    ("_atlas_snapshot_id", "varchar(40)", "CDC: the snapshot (cluster time) the version was read in or after."),
    ("_atlas_deleted", "boolean", "CDC, hard deletes: true on the version that says the document was deleted."),
    ("_deleted_at", "varchar(40)", "CDC, soft deletes: ISO 8601 UTC time of the delete (on a sweep marker: of the sweep)."),
    ("_atlas_swept", "boolean", "CDC: true on the marker row (no `_id`) a resync lands once its snapshot was read to the "
                                "end; documents whose newest version is older and of another snapshot are gone."),
)


def spectrum_type(node: Node) -> str | None:
    """The Spectrum type of a nested value, None when none fits (an object without a key a struct
    can name, or a value that is an object in some documents and a scalar in others)."""
    if node.keyed_by_data:
        inner = spectrum_type(node.data_values) if node.data_values is not None else None
        return f"map<varchar(512),{inner}>" if inner else None
    if node.elements is not None:
        inner = spectrum_type(node.elements)
        return f"array<{inner}>" if inner else None
    if "object" in node.types:
        if any(t not in ("object", "null") for t in node.types):
            return None
        parts, seen = [], set()
        for child in node.named_children():
            key = child.key.lower()
            inner = spectrum_type(child)
            if _STRUCT_KEY.match(child.key) and key not in seen and inner:
                seen.add(key)
                parts.append(f"{key}:{inner}")
        return f"struct<{','.join(parts)}>" if parts else None
    kinds = node.kinds - {JSON}
    if not kinds:
        return None
    kind = planned_kind(node.types)
    if kind is None or kinds - {kind} - _JSON_READS_AS.get(kind, set()):
        return "varchar(65535)"  # mixed scalars: their text
    return SPECTRUM_TYPE[kind]


class _Planner:
    """Decides the models of one collection. Every column gets two expressions: one over the
    loaded raw table (`source`, JSON / SUPER columns), one over the landing zone's external table
    (`landed`, Spectrum struct / array / map columns, read with the `landed_*` macros)."""

    def __init__(self, layout: CollectionLayout, max_depth: int) -> None:
        self.layout = layout
        self.max_depth = max_depth
        self.prefix = f"stg_{layout.source_name}__{layout.table}"
        self.aliases: set[str] = set()

    # -- the staging model of the raw table -----------------------------------------------------

    def staging(self, root: Node) -> None:
        layout = self.layout
        fields = {c.entry.get("column") or column_name(c.key) for c in root.named_children()}
        id_column = f"{_singular(layout.table)}_id"
        if id_column in fields:  # a field of that name exists (accounts.account_id)
            id_column = f"{_singular(layout.table)}_document_id"
        columns = [Column(id_column, "source._id", "Document `_id` as text (an ObjectId as 24-character hex, other types "
                          "as canonical extended JSON).", "ids", ["unique", "not_null"], landing="landed._id")]
        layout.source_columns.append(Column("_id", "", "Document `_id` as text: ObjectId as 24-character hex, a string as "
                                            "is, any other type as canonical extended JSON.", "ids", ["unique", "not_null"]))
        names = {id_column}
        arrays: list[_Array] = []
        for node in root.named_children():
            if node.key == "_id":
                continue
            raw = node.entry.get("column") or column_name(node.key)
            layout.source_columns.append(Column(raw, "", node.describe() + _stored(node), _group(node)))
            for variant in node.entry.get("variant_columns") or []:
                layout.source_columns.append(Column(variant, "", f"Values of `{node.path}` of another type than "
                                                    f"`{raw}` holds ({variant.rsplit('__v_', 1)[-1]}).", _group(node)))
            for column in self.top_level(node, raw, arrays):
                self._add(columns, names, column)
        self._add(columns, names, Column("extracted_at", "{{ utc_timestamp('source._atlas_extracted_at') }}",
                                         "When the ingestion run read the document, UTC.", "timestamps",
                                         landing="{{ text_timestamp('landed._atlas_extracted_at') }}"))
        self._add(columns, names, Column("deleted_at", "{{ deleted_at(source(%r, %r), 'source') }}" % (
            layout.source_name, layout.table), "When the document was deleted in the source (CDC loads that keep "
            "deleted rows), UTC; null otherwise.", "timestamps",
            landing="versions.deleted_at"))
        self._add(columns, names, Column("dlt_load_id", "source._dlt_load_id", "dlt load package that wrote the raw row.",
                                         "load metadata", landing="landed._dlt_load_id"))
        for name, description in (("_atlas_extracted_at", "UTC time the ingestion run read the document."),
                                  ("_dlt_load_id", "dlt load package that wrote the row."),
                                  ("_dlt_id", "dlt's row id.")):
            layout.source_columns.append(Column(name, "", description, "load metadata"))
        model = Model(self.prefix, f"One row per document of `{layout.database}.{layout.collection}`, nested objects "
                      "flattened into typed columns (`__` between levels). Grain: one row per `_id`.", columns, "source",
                      key_columns=[id_column])
        layout.models.append(model)
        for array in arrays:
            self.unnested(array, model, [(id_column, id_column, "landed._id")], [])

    def top_level(self, node: Node, raw: str, arrays: list["_Array"]) -> list[Column]:
        kind = node.entry.get("column_type")
        if kind == JSON or (kind is None and node.kinds <= {JSON}):
            if spectrum_type(node) is None:  # not in the external table: every path of it is null there
                return [self._unlanded(c) for c in
                        self.nested(node, _ref("source", raw), _UNLANDED, raw, 1, arrays, self.prefix)]
            return self.nested(node, _ref("source", raw), f"'{_ref('landed', raw)}'", raw, 1, arrays, self.prefix)
        if kind == TIMESTAMP:
            expression = f"{{{{ utc_timestamp('{_ref('source', raw)}') }}}}"
            landing = f"{{{{ text_timestamp('{_ref('landed', raw)}') }}}}"
        else:
            expression = self._folded(node, raw, kind, "source")
            landing = self._folded(node, raw, kind, "landed")
        return [Column(raw, expression, node.describe() + ".", _group(node), landing=landing)] + [
            Column(v, _ref("source", v), f"Values of `{node.path}` of another type than `{raw}` holds, as they are.",
                   _group(node), landing=_ref("landed", v))
            for v in node.entry.get("variant_columns") or [] if not self._folds(kind, v)
        ]

    def _folds(self, kind: str | None, variant: str) -> bool:
        return variant.rsplit("__v_", 1)[-1] in _FOLDS_INTO.get(kind or "", set())

    def _folded(self, node: Node, raw: str, kind: str | None, relation: str) -> str:
        folded = [v for v in node.entry.get("variant_columns") or [] if self._folds(kind, v)]
        if not folded:
            return _ref(relation, raw)
        sql_type = SQL_TYPE.get(kind or TEXT, "varchar(65535)")
        parts = [_ref(relation, raw)] + [f"cast({_ref(relation, v)} as {sql_type})" for v in folded]
        return f"coalesce({', '.join(parts)})"

    def _unlanded(self, column: Column) -> Column:
        column.landing = "cast(null as varchar(65535))" if column.group != "arrays" else "{{ landed_json() }}"
        column.description = column.description.rstrip(".") + " (null in the landing zone: no one Spectrum type fits the field)."
        return column

    # -- nested objects, flattened ----------------------------------------------------------------

    def nested(self, node: Node, json_expr: str, landed: str, name: str, depth: int, arrays: list["_Array"],
               model_prefix: str, keys: tuple[str, ...] = (), group: str | None = None) -> list[Column]:
        """Columns for a JSON value at `keys` inside `json_expr` (and inside `landed`, a Jinja
        expression of the same value in the landing zone): its scalar paths flattened while it is
        an object within the depth, itself as JSON otherwise (arrays and data-keyed objects get a
        model of their own, reading this JSON)."""
        group = group or name.split("__", 1)[0]
        if node.keyed_by_data or node.elements is not None or (node.is_object and depth > self.max_depth):
            kept = Column(name, self._json_child(json_expr, keys), node.describe() + _why_json(node, depth > self.max_depth),
                          "arrays" if node.elements is not None else group, landing="{{ landed_json() }}")
            if node.elements is not None or node.keyed_by_data:
                arrays.append(_Array(node, name, f"{model_prefix}__{name}", landed, keys))
            return [kept]
        if not node.is_object:
            return [self._scalar(node, json_expr, landed, keys, name, group)]
        columns: list[Column] = []
        for child in node.named_children():
            if not _PATH_KEY.match(child.key):
                self.layout.skipped.append(f"{child.path}: key characters a JSON path cannot name on both warehouses; "
                                           f"it stays inside `{name}`")
                continue
            columns += self.nested(child, json_expr, landed, f"{name}__{column_name(child.key)}", depth + 1, arrays,
                                   model_prefix, (*keys, child.key), group)
        if not columns or any(t != "object" and t != "null" for t in node.types):
            # an object that is sometimes something else, or empty in every sample: keep it whole too
            columns.insert(0, Column(name, self._json_child(json_expr, keys), node.describe() + " (as JSON).", group,
                                     landing="{{ landed_json() }}"))
        return columns

    def _scalar(self, node: Node, json_expr: str, landed: str, keys: tuple[str, ...], name: str, group: str) -> Column:
        kind = planned_kind(node.types) if node.kinds - {JSON} else None
        if kind is None or kind == JSON:
            return Column(name, self._json_child(json_expr, keys), node.describe() + " (as JSON).", group,
                          landing="{{ landed_json() }}")
        if kind == TIMESTAMP:
            value = f"{{{{ utc_timestamp(json_value('{json_expr}', {_keys(keys)}, 'timestamptz')) }}}}"
            landing = f"{{{{ utc_timestamp(landed_value({landed}, {_keys(keys)}, 'timestamptz')) }}}}"
        else:
            value = f"{{{{ json_value('{json_expr}', {_keys(keys)}, '{SQL_TYPE[kind]}') }}}}"
            landing = f"{{{{ landed_value({landed}, {_keys(keys)}, '{SQL_TYPE[kind]}') }}}}"
        note = ""
        if node.kinds - {JSON, kind} - _JSON_READS_AS.get(kind, set()):  # kinds a cast to `kind` cannot read
            note = f"; read as {SQL_TYPE[kind]} (values of other types are null here, and stay in the raw JSON)"
        if not all(_STRUCT_KEY.match(k) for k in keys):
            note += "; null in the landing zone (a key Spectrum cannot name)"
        return Column(name, value, node.describe() + note + ".", group, landing=landing)

    def _json_child(self, json_expr: str, keys: tuple[str, ...]) -> str:
        if not keys:
            return json_expr
        return f"{{{{ json_child('{json_expr}', {_keys(keys)}) }}}}"

    # -- arrays and data-keyed objects: a model each ------------------------------------------

    def unnested(self, array: "_Array", parent: Model, parent_keys: list[tuple[str, str, str]],
                 landed_from: list[str] | None) -> None:
        """The model of one row per element of the array (or key of the object) held in
        `parent.<column>`, with the parent's keys, its own position (or key), and the element's
        fields. `parent_keys` are (column, column of the parent model, landing expression);
        `landed_from` the unnests that lead to the parent's element in the landing zone."""
        node, column, name = array.node, array.column, array.model
        is_array = node.elements is not None
        inner = node.elements if is_array else node.data_values
        step = column.rsplit("__", 1)[-1] if "__" in column else column
        position = f"{_singular(step)}_index" if is_array else f"{_singular(step)}_key"
        alias = self._alias(f"{_singular(step)}_element")
        unnest = "landed_array" if is_array else "landed_object"
        if landed_from is not None and array.landed != _UNLANDED:
            landed_from = [*landed_from, f"{{{{ {unnest}({array.landed}, {_keys(array.keys)}, '{alias}') }}}}"]
        else:
            landed_from = None  # not in the external table: no rows in the landing zone
        element = f"'{alias}'" if is_array else f"landed_entry('{alias}')"
        columns = [Column(key, _ref("parent", source), f"`{key}` of the {'document' if i == 0 else 'parent element'}.",
                          "ids", ["not_null"], landing=landing) for i, (key, source, landing) in enumerate(parent_keys)]
        position_landing = f"{alias}_index" if is_array else f"{{{{ landed_key('{alias}') }}}}"
        columns.append(Column(position, "element_index" if is_array else "element_key",
                              "0-based position in the array." if is_array else "The key (data, e.g. an id or a date).",
                              "ids", ["not_null"], landing=position_landing))
        names = {c.name for c in columns}
        arrays: list[_Array] = []
        if inner is not None and inner.is_object:
            for child in inner.named_children():
                if not _PATH_KEY.match(child.key):
                    self.layout.skipped.append(f"{child.path}: key characters a JSON path cannot name on both warehouses")
                    continue
                for c in self.nested(child, "element", element, column_name(child.key), 2, arrays, name, (child.key,),
                                     _singular(step)):
                    self._add(columns, names, c)
        elif inner is not None:
            self._add(columns, names, self._element_value(inner, _singular(step), element))
        for extra, landing in (("extracted_at", "{{ text_timestamp('landed._atlas_extracted_at') }}"),
                               ("deleted_at", "versions.deleted_at")):
            self._add(columns, names, Column(extra, _ref("parent", extra), f"`{extra}` of the document.", "timestamps",
                                             landing=landing))
        what = "element of the array" if is_array else "key of the object"
        description = (f"One row per {what} `{node.path}` of `{self.layout.database}.{self.layout.collection}`, "
                       f"with the keys of its parent and its {'position' if is_array else 'key'}.")
        if landed_from is None:
            description += " No rows in the landing zone: no one Spectrum type fits the field."
            for c in columns:
                c.landing = "cast(null as varchar(65535))"
        model = Model(name, description, columns, parent.name, column, "array" if is_array else "object",
                      [k for k, _, _ in parent_keys] + [position], landed_from)
        self.layout.models.append(model)
        for child in arrays:
            keys = [(k, k, landing) for k, _, landing in parent_keys] + [(position, position, position_landing)]
            self.unnested(child, model, keys, landed_from)

    def _alias(self, wanted: str) -> str:
        alias, n = wanted, 2
        while alias in self.aliases:
            alias, n = f"{wanted}{n}", n + 1
        self.aliases.add(alias)
        return alias

    def _element_value(self, inner: Node, name: str, element: str) -> Column:
        """The column of a scalar element (or value of a data key), named as one of them (`tags` -> `tag`)."""
        kind = planned_kind(inner.types)
        if kind is None or kind == JSON:
            return Column(name, "element", inner.describe() + " (as JSON).", "value", landing="{{ landed_json() }}")
        value = f"{{{{ json_value('element', [], '{SQL_TYPE[kind]}') }}}}"
        landing = f"{{{{ landed_value({element}, [], '{SQL_TYPE[kind]}') }}}}"
        if kind == TIMESTAMP:
            value = f"{{{{ utc_timestamp(json_value('element', [], 'timestamptz')) }}}}"
            landing = f"{{{{ utc_timestamp(landed_value({element}, [], 'timestamptz')) }}}}"
        return Column(name, value, inner.describe() + ".", "value", landing=landing)

    def _add(self, columns: list[Column], names: set[str], column: Column) -> None:
        check_length(column.name, f"the column for `{column.description.split('`')[1] if '`' in column.description else column.name}`")
        if column.name in names:
            raise ConfigError(f"{self.layout.database}.{self.layout.collection}: two paths map to the column "
                              f"'{column.name}' in the generated models: rename one in the source, or leave one out "
                              "with a projection")
        names.add(column.name)
        columns.append(column)


_UNLANDED = "'landed.unlanded'"  # a field the external table does not declare


@dataclass
class _Array:
    """An array (or data-keyed object) that gets a model of its own: where it is in the parent
    model (`column`) and in the landing zone (`landed`, a Jinja expression, then `keys`)."""

    node: Node
    column: str
    model: str
    landed: str
    keys: tuple[str, ...]


def sql_name(name: str) -> str:
    """A column name as SQL writes it: quoted when DuckDB or Redshift reserve the word."""
    return f'"{name}"' if name in RESERVED_WORDS else name


def _ref(relation: str, name: str) -> str:
    return f"{relation}.{sql_name(name)}"


def _keys(keys: tuple[str, ...]) -> str:
    return "[" + ", ".join(repr(k) for k in keys) + "]"


def _singular(name: str) -> str:
    """`items` -> `item`, `sales` -> `sale`, `addresses` -> `address`: names of one element."""
    for plural, single in (("ies", "y"), ("sses", "ss"), ("xes", "x"), ("ches", "ch"), ("shes", "sh")):
        if name.endswith(plural) and len(name) > len(plural) + 1:
            return name[: -len(plural)] + single
    if name.endswith("s") and not name.endswith("ss") and len(name) > 3:
        return name[:-1]
    return name


def _group(node: Node) -> str:
    stored = node.entry.get("column_type")  # the raw column's kind, where the field has one
    kinds = {stored} if stored and stored != JSON else node.kinds
    if kinds == {TIMESTAMP}:
        return "timestamps"
    if kinds == {BOOL}:
        return "booleans"
    if kinds and kinds <= {BIGINT, DOUBLE, DECIMAL}:
        return "numbers"
    if "object" in node.types or "array" in node.types:
        return column_name(node.key)
    return "attributes"


def _stored(node: Node) -> str:
    kind = node.entry.get("column_type")
    return f"; stored as {kind}." if kind else "."


def _why_json(node: Node, too_deep: bool) -> str:
    if node.elements is not None:
        return " (the array as JSON; one row per element in its own model)."
    if node.keyed_by_data:
        return " (as JSON; one row per key in its own model)."
    return " (as JSON: deeper than the configured depth)." if too_deep else " (as JSON)."
