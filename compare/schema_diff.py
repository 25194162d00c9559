"""How two schemas differ: names (repeated, added, removed, reordered), then per field its
type, nullability and metadata, then the schema's own metadata. Empty: the same schema."""

from collections import Counter

import pyarrow as pa

from compare.samples import show
from compare.values import value_type


def column_pairs(left: pa.Schema, right: pa.Schema) -> list[tuple[int, int]]:
    """(left index, right index) of the columns whose values can be compared: by position
    when both have the same names in the same order (repeated names included), else by name
    for the names each side has once; only where the value types agree."""
    ours, theirs = left.names, right.names  # (each `.names` builds a new list)
    if ours == theirs:
        pairs = [(i, i) for i in range(len(ours))]
    else:
        counts = Counter(theirs)
        at = {name: i for i, name in enumerate(theirs)}
        pairs = [(i, at[name]) for i, (name, n) in enumerate(zip(ours, _counts(ours), strict=True))
                 if n == 1 and counts[name] == 1]  # fmt: skip
    return [(i, j) for i, j in pairs
            if value_type(left.field(i).type) == value_type(right.field(j).type)]  # fmt: skip


def _counts(names: list[str]) -> list[int]:
    counts = Counter(names)
    return [counts[name] for name in names]


def schema_differences(left: pa.Schema, right: pa.Schema, labels: tuple[str, str]) -> list[str]:
    details = []
    ours, theirs = left.names, right.names
    for label, names in zip(labels, (ours, theirs), strict=True):
        repeated = {name: n for name, n in Counter(names).items() if n > 1}
        if repeated:
            shown = ", ".join(f"{name} x{n}" for name, n in repeated.items())
            details.append(f"column names repeated in {label}: {shown}")
    our_set, their_set = set(ours), set(theirs)
    added = [name for name in dict.fromkeys(theirs) if name not in our_set]
    removed = [name for name in dict.fromkeys(ours) if name not in their_set]
    if added:
        details.append(f"fields added: {', '.join(added)}")
    if removed:
        details.append(f"fields removed: {', '.join(removed)}")
    common = [name for name in ours if name in their_set]
    if common != [name for name in theirs if name in our_set]:
        details.append(f"fields reordered: {ours} vs {theirs}")
    if ours == theirs:
        fields = [(left.field(i), right.field(i)) for i in range(len(ours))]
    else:
        first_ours = {name: i for i, name in reversed(list(enumerate(ours)))}
        first_theirs = {name: i for i, name in reversed(list(enumerate(theirs)))}
        fields = [(left.field(first_ours[name]), right.field(first_theirs[name]))
                  for name in dict.fromkeys(common)]  # fmt: skip
    for a, b in fields:
        details += _field_differences(a, b)
    if left.metadata != right.metadata:
        keys = sorted(set(left.metadata or {}) ^ set(right.metadata or {})
                      | {k for k in (left.metadata or {}) if (right.metadata or {}).get(k)
                         not in (None, left.metadata[k])})  # fmt: skip
        details.append("schema metadata differs: " + ", ".join(show(_text(k)) for k in keys))
    return details


def _field_differences(a: pa.Field, b: pa.Field) -> list[str]:
    details = []
    if a.type != b.type:
        encoded = pa.types.is_dictionary(a.type) or pa.types.is_dictionary(b.type)
        note = " (dictionary-encoded: the values are compared decoded)" if (
            encoded and value_type(a.type) == value_type(b.type)) else ""  # fmt: skip
        details.append(f"field {a.name} retyped: {a.type} vs {b.type}{note}")
    if a.nullable != b.nullable:
        details.append(f"field {a.name} nullability: {a.nullable} vs {b.nullable}")
    if (a.metadata or {}) != (b.metadata or {}):
        details.append(f"field {a.name} metadata: {_shown(a.metadata)} vs {_shown(b.metadata)}")
    return details


def _shown(metadata: dict | None) -> str:
    if not metadata:
        return "none"
    return "{" + ", ".join(f"{show(_text(k))}: {show(_text(v))}" for k, v in metadata.items()) + "}"


def _text(value: bytes) -> str:
    return value.decode(errors="backslashreplace")
