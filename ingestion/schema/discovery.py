"""Schema discovery: what a collection's documents hold, from a sample the server draws.

Every field path with its BSON types and how often it is present, arrays with the shape of their
elements, and objects whose keys are data (ids, dates, numbers) rather than names, which are
collapsed into one `<path>.*` entry instead of one entry per key. Paths are written with `.`
between object levels, `[]` for the elements of an array and `*` for data keys:
`items[].price`, `ratings.*.score`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pymongo.collection import Collection
from pymongo.errors import OperationFailure

from ingestion.mongo.bson_types import BIGINT, BOOL, DECIMAL, DOUBLE, JSON, TEXT, TIMESTAMP, bson_type_name, common_kind

DEFAULT_SAMPLE_SIZE = 1000
MAX_DEPTH = 32  # deeper levels count as values of their parent, not as paths of their own
MAX_NAMED_KEYS = 100  # an object with more distinct keys than this is keyed by data
DATA_KEY = re.compile(
    r"^(-?\d+(\.\d+)?"  # numbers
    r"|[0-9a-fA-F]{24}"  # ObjectId hex
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"  # UUID
    r"|\d{4}-\d{2}(-\d{2})?([T ][0-9:.]+Z?)?)$"  # dates and months
)

# The warehouse kind of a top-level field's BSON type (docs/bson_types.md); null has none.
KIND_OF_TYPE: dict[str, str] = {
    "double": DOUBLE, "int": BIGINT, "long": BIGINT, "decimal": DECIMAL, "string": TEXT, "objectId": TEXT,
    "binData": TEXT, "javascript": TEXT, "bool": BOOL, "date": TIMESTAMP, "object": JSON, "array": JSON,
    "regex": JSON, "timestamp": JSON, "minKey": JSON, "maxKey": JSON,
}
_NUMBER_KINDS = {BIGINT, DOUBLE, DECIMAL}


@dataclass
class FieldNode:
    """What the sample held at one path."""

    types: Counter = field(default_factory=Counter)
    children: dict[str, "FieldNode"] = field(default_factory=dict)
    elements: "FieldNode | None" = None
    keyed_by_data: bool = False
    distinct_keys: int = 0
    key_examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(self.types.values())

    def observe(self, value: Any, depth: int = 0) -> None:
        self.types[bson_type_name(value)] += 1
        if depth >= MAX_DEPTH:
            return
        if isinstance(value, dict):
            for key, child in value.items():
                node = self.children.get(key)
                if node is None:
                    node = self.children[key] = FieldNode()
                node.observe(child, depth + 1)
        elif isinstance(value, list):
            if self.elements is None:
                self.elements = FieldNode()
            for element in value:
                self.elements.observe(element, depth + 1)

    def merge(self, other: "FieldNode") -> None:
        self.types.update(other.types)
        for key, child in other.children.items():
            self.children.setdefault(key, FieldNode()).merge(child)
        if other.elements is not None:
            if self.elements is None:
                self.elements = FieldNode()
            self.elements.merge(other.elements)

    def collapse_data_keys(self) -> None:
        """Objects keyed by data become one `*` child holding what all their values hold."""
        keys = list(self.children)
        if keys and (len(keys) > MAX_NAMED_KEYS or all(DATA_KEY.match(k) for k in keys)):
            merged = FieldNode()
            for child in self.children.values():
                merged.merge(child)
            self.keyed_by_data, self.distinct_keys, self.key_examples = True, len(keys), sorted(keys)[:3]
            self.children = {"*": merged}
        for child in self.children.values():
            child.collapse_data_keys()
        if self.elements is not None:
            self.elements.collapse_data_keys()


@dataclass(frozen=True)
class FieldProfile:
    """One path of a collection's schema: its BSON types (name -> values seen), how many of the
    values that could hold it did (`present` of `of`), and for an object keyed by data how many
    distinct keys the sample had."""

    path: str
    types: dict[str, int]
    present: int
    of: int
    keyed_by_data: bool = False
    distinct_keys: int = 0
    key_examples: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # split_path(path): the keys themselves, `[]` and `*`

    @property
    def top_level(self) -> bool:
        return len(self.steps) == 1

    @property
    def field(self) -> str:
        """The top-level key the path starts with."""
        return self.steps[0]

    @property
    def presence(self) -> float:
        return self.present / self.of if self.of else 0.0


@dataclass
class CollectionSchema:
    database: str
    collection: str
    sampled: int
    fields: list[FieldProfile]

    def top_level(self) -> list[FieldProfile]:
        return [f for f in self.fields if f.top_level]


def profile(documents: Iterable[dict[str, Any]], database: str, collection: str) -> CollectionSchema:
    """The schema of `documents`: every path, parents before children, in first-seen order."""
    root = FieldNode()
    sampled = 0
    for doc in documents:
        root.observe(doc)
        sampled += 1
    for child in root.children.values():  # top-level keys are column names, never data
        child.collapse_data_keys()
    return CollectionSchema(database, collection, sampled, list(_paths(root.children, "", sampled)))


def escape_key(key: str) -> str:
    """A document key as one step of a path: `\\`, `.` and `[` escaped with `\\`, so a key that holds
    a dot (`{"zip.code": ...}`) stays one key. (`*`, the keys of an object keyed by data, is not a key.)"""
    return key.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")


def split_path(path: str) -> list[str]:
    """The steps of a schema path, escapes undone: keys, `[]` for array elements and `*` for the
    keys of an object keyed by data (`items[].tags[]` -> `items`, `[]`, `tags`, `[]`)."""
    steps: list[str] = []
    key, i, escaped_step = "", 0, False
    while i < len(path):
        ch = path[i]
        if ch == "\\" and i + 1 < len(path):
            key, i, escaped_step = key + path[i + 1], i + 2, True
            continue
        if ch == ".":
            steps.append(key)
            key, escaped_step = "", False
        elif path.startswith("[]", i):
            if key or escaped_step:
                steps.append(key)
            steps.append("[]")
            key, escaped_step, i = "", False, i + 2
            if i < len(path) and path[i] == ".":
                i += 1
            continue
        else:
            key += ch
        i += 1
    if key or escaped_step:
        steps.append(key)
    return steps


def _paths(children: dict[str, FieldNode], prefix: str, of: int, steps: tuple[str, ...] = ()) -> Iterator[FieldProfile]:
    for key, node in children.items():
        if key == "":  # no path names it: left out of the profile (a top-level one is quarantined,
            continue   # a nested one stays in its parent's JSON)
        step = escape_key(key)
        path = f"{prefix}.{step}" if prefix else step
        here = (*steps, key)
        present = node.count - node.types.get("null", 0)
        yield FieldProfile(path, dict(node.types.most_common()), present, of, node.keyed_by_data, node.distinct_keys,
                           tuple(node.key_examples), here)
        objects = node.types.get("object", 0)
        yield from _paths(node.children, path, objects * node.distinct_keys if node.keyed_by_data else objects, here)
        if node.elements is not None:
            elements = node.elements
            yield FieldProfile(f"{path}[]", dict(elements.types.most_common()), elements.count, elements.count,
                               elements.keyed_by_data, elements.distinct_keys, tuple(elements.key_examples), (*here, "[]"))
            element_objects = elements.types.get("object", 0)
            yield from _paths(elements.children, f"{path}[]",
                              element_objects * elements.distinct_keys if elements.keyed_by_data else element_objects,
                              (*here, "[]"))


def planned_kind(types: Iterable[str]) -> str | None:
    """The column kind discovery plans for a top-level field of these BSON types: their common
    kind, else the common kind of the numbers among them (so int and double share a double
    column even when a string turns up too); None when no one kind stands out."""
    kinds = {KIND_OF_TYPE[t] for t in types if t in KIND_OF_TYPE}
    return common_kind(kinds) or common_kind(kinds & _NUMBER_KINDS) if kinds else None


def sample_documents(collection: Collection, size: int, filter: dict[str, Any] | None = None,
                     projection: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Up to `size` documents drawn at random by the server (`$sample`), after the collection's
    filter and projection, so discovery sees what the load reads."""
    stages: list[dict[str, Any]] = [{"$match": filter}] if filter else []
    stages.append({"$sample": {"size": size}})
    if projection:
        stages.append({"$project": projection})
    try:
        return list(collection.aggregate(stages))
    except OperationFailure:
        # Servers or views that refuse $sample: the first documents in natural order instead.
        return list(collection.find(filter or {}, projection).limit(size))


def discover(collection: Collection, size: int = DEFAULT_SAMPLE_SIZE, filter: dict[str, Any] | None = None,
             projection: dict[str, Any] | None = None) -> CollectionSchema:
    return profile(sample_documents(collection, size, filter, projection), collection.database.name, collection.name)
