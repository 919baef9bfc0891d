"""What `atlas-ingest scaffold` decides from a schema file, and how it writes over a user's edits:
column names and groups, reserved words, the variant folding rule, the depth limit, the
three-way merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ingestion.errors import ConfigError
from ingestion.scaffold.layout import plan_collection
from ingestion.scaffold.merge import merge3, write_generated
from ingestion.scaffold.render import model_sql, models_yml, sqlfluff_config


def schema(*fields: dict) -> dict:
    return {"version": 1, "database": "shop", "collection": "orders", "table": "orders",
            "fields": [{"path": "_id", "types": ["objectId"], "presence": 1.0, "column": "_id", "column_type": "text"},
                       *fields]}


def columns(content: dict, model: str = "stg_shop__orders", max_depth: int = 3) -> dict[str, str]:
    layout = plan_collection(content, max_depth)
    chosen = next(m for m in layout.models if m.name == model)
    return {c.name: c.expression for c in chosen.columns}


def test_nested_paths_become_columns_named_with_double_underscores():
    got = columns(schema(
        {"path": "shipping", "types": ["object"], "presence": 1.0, "column": "shipping", "column_type": "json"},
        {"path": "shipping.address", "types": ["object"], "presence": 1.0},
        {"path": "shipping.address.zipCode", "types": ["string"], "presence": 1.0},
    ))
    assert got["shipping__address__zip_code"] == "{{ json_value('source.shipping', ['address', 'zipCode'], 'varchar(65535)') }}"
    assert "shipping" not in got  # flattened, not kept whole


def test_objects_deeper_than_the_depth_stay_json():
    content = schema(
        {"path": "a", "types": ["object"], "presence": 1.0, "column": "a", "column_type": "json"},
        {"path": "a.b", "types": ["object"], "presence": 1.0},
        {"path": "a.b.c", "types": ["int"], "presence": 1.0},
    )
    assert columns(content, max_depth=1)["a__b"] == "{{ json_child('source.a', ['b']) }}"
    assert "a__b__c" in columns(content, max_depth=2)


def test_a_variant_folds_into_its_column_only_when_every_value_converts():
    got = columns(schema(
        {"path": "total", "types": ["int", "double"], "presence": 1.0, "column": "total", "column_type": "double",
         "variant_columns": ["total__v_bigint"]},
        {"path": "code", "types": ["int", "string"], "presence": 1.0, "column": "code", "column_type": "bigint",
         "variant_columns": ["code__v_text"]},
    ))
    assert got["total"] == "coalesce(source.total, cast(source.total__v_bigint as double precision))"
    assert "total__v_bigint" not in got
    assert got["code"] == "source.code" and got["code__v_text"] == "source.code__v_text"  # text never folds into a number


def test_reserved_words_are_quoted_in_sql_and_yml():
    content = schema(
        {"path": "order", "types": ["string"], "presence": 1.0, "column": "order", "column_type": "text"},
        {"path": "tags", "types": ["array"], "presence": 1.0, "column": "tags", "column_type": "json"},
        {"path": "tags[]", "types": ["string"], "presence": 1.0},
    )
    layout = plan_collection(content)
    staging, tags = layout.models
    sql = model_sql(staging, layout)
    assert 'source."order",' in sql
    assert "as \"tag\"" in model_sql(tags, layout)  # an element is named as one of them; Redshift reserves TAG
    entries = {c["name"]: c for m in yaml.safe_load(models_yml([layout], ["s.yml"]))["models"] for c in m["columns"]}
    assert entries["order"].get("quote") is True and entries["tag"].get("quote") is True
    assert "ignore_words = order,tag" in sqlfluff_config([layout])


def test_two_paths_with_one_column_name_are_refused():
    content = schema(
        {"path": "a", "types": ["object"], "presence": 1.0, "column": "a", "column_type": "json"},
        {"path": "a.b", "types": ["string"], "presence": 1.0},
        {"path": "a__b", "types": ["string"], "presence": 1.0, "column": "a__b", "column_type": "text"},
    )
    with pytest.raises(ConfigError, match="two paths map to the column 'a__b'"):
        plan_collection(content)


BASE = "select\n    a,\n    b,\n    c\nfrom t\n"


def test_generator_changes_merge_into_a_users_edits():
    ours = BASE.replace("    b,", "    lower(b) as b,")
    theirs = BASE.replace("    c\n", "    c,\n    d\n")
    assert merge3(BASE, ours, theirs) == "select\n    a,\n    lower(b) as b,\n    c,\n    d\nfrom t\n"


def test_a_change_to_a_line_the_user_edited_is_a_conflict():
    ours = BASE.replace("    b,", "    lower(b) as b,")
    theirs = BASE.replace("    b,", "    cast(b as int) as b,")
    assert merge3(BASE, ours, theirs) is None


def test_write_generated_never_overwrites_an_edit(tmp_path: Path):
    relative = Path("models/x.sql")
    assert write_generated(tmp_path, relative, BASE).action == "created"
    assert write_generated(tmp_path, relative, BASE).action == "unchanged"
    edited = BASE.replace("    a,", "    a + 1 as a,")
    (tmp_path / relative).write_text(edited)
    conflict = BASE.replace("    a,", "    a::int as a,")
    assert write_generated(tmp_path, relative, conflict).action == "conflict"
    assert (tmp_path / relative).read_text() == edited
    own = Path("models/mine.sql")
    (tmp_path / own).write_text("select 1\n")
    assert write_generated(tmp_path, own, BASE).action == "not-generated"
    assert (tmp_path / own).read_text() == "select 1\n"


def test_a_field_no_spectrum_type_fits_says_so_and_reads_null_only_in_the_landing_zone():
    """An array whose elements are objects in some documents and strings in others has no one
    Spectrum type: the external table leaves it out, and its model has no rows there (say so)."""
    layout = plan_collection(schema(
        {"path": "notes", "types": ["array"], "presence": 1.0, "column": "notes", "column_type": "json"},
        {"path": "notes[]", "types": ["object", "string"], "presence": 1.0},
        {"path": "notes[].text", "types": ["string"], "presence": 1.0},
    ))
    assert "notes" not in {c.name for c in layout.landing_columns}
    assert any(note.startswith("notes: not in the landing zone") for note in layout.skipped)
    _, notes = layout.models
    assert notes.landed_from is None and "No rows in the landing zone" in notes.description
    landed_query = model_sql(notes, layout).split("{% else %}")[0]
    assert "where 1 = 0" in landed_query and "landed_array" not in landed_query
    assert "unnest_json_array('parent', 'notes', 'element')" in model_sql(notes, layout)  # the loaded path reads it
