"""One binder: a run's `PARAMS` (a JSON object) and `DATE` become its values, checked against
the pipeline's annotations before anything is submitted, identically in every wrapper.

Values travel to orchestrators in their JSON form (`to_json`) and come back with `from_json`,
so a step gets the same Python value whichever wrapper calls it.
"""

import datetime as dt
import json
import os
import re
from collections.abc import Mapping

from parity.declaration import Parameter, Pipeline
from parity.errors import UsageError

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def bind(
    pipeline: Pipeline,
    params: str | Mapping | None,
    *,
    date: str | None = None,
    base_dir: str | None = None,
    pipeline_dir: str | None = None,
) -> dict[str, object]:
    """The run's values by parameter name; refuses what does not fit (UsageError, exit 2).

    Without `params` the run takes the pipeline's sample, whose strings naming a file in
    `pipeline_dir` are that file. Relative paths become absolute from `base_dir` (the folder
    the command runs in).
    """
    if params is None:
        given = {
            name: _sample_value(value, pipeline_dir) for name, value in pipeline.sample.items()
        }
        origin = f"pipeline {pipeline.name!r}: sample"
    else:
        given = _json_object(params)
        origin = "PARAMS"
    if date is not None:
        if parse_date(date) is None:  # named as given: DATE= (make) or --date, not PARAMS
            raise UsageError(f"DATE={date}: not a date YYYY-MM-DD")
        if pipeline.partition is None:
            raise UsageError(f"DATE={date}: pipeline {pipeline.name!r} has no date partition")
        if "date" in given and params is not None:
            raise UsageError(f"DATE={date} and a date in PARAMS: give the date once")
        given = {**given, "date": date}
    unknown = sorted(set(given) - set(pipeline.parameters))
    if unknown:
        known = ", ".join(sorted(pipeline.parameters)) or "none"
        raise UsageError(
            f"{origin}: {', '.join(unknown)}: no step takes such a parameter "
            f"(the parameters of {pipeline.name!r}: {known})"
        )
    values: dict[str, object] = {}
    for name, parameter in pipeline.parameters.items():
        if name in given:
            values[name] = _checked(parameter, given[name], origin, base_dir)
        elif parameter.required:
            raise UsageError(f"{origin}: {name} ({parameter.annotation}) is required")
        else:
            values[name] = parameter.default
    return values


def to_json(values: Mapping[str, object]) -> dict[str, object]:
    """The values as JSON types: dates as YYYY-MM-DD."""
    return {
        name: value.isoformat() if isinstance(value, dt.date) else value
        for name, value in values.items()
    }


def from_json(pipeline: Pipeline, values: Mapping[str, object]) -> dict[str, object]:
    """What `to_json` gave, back as the steps' types (already checked by `bind`)."""
    return {
        name: dt.date.fromisoformat(value)
        if pipeline.parameters[name].type is dt.date and isinstance(value, str)
        else value
        for name, value in values.items()
    }


def input_files(values: Mapping[str, object]) -> dict[str, str]:
    """The run parameters that name an existing file: the run's input files."""
    return {
        name: value
        for name, value in values.items()
        if isinstance(value, str) and os.path.isfile(value)
    }


def parse_date(value: object) -> dt.date | None:
    """`value` as a date if it is exactly YYYY-MM-DD (no week dates, no compact forms)."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _json_object(params: str | Mapping) -> dict[str, object]:
    if isinstance(params, Mapping):
        return dict(params)
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        raise UsageError(f"PARAMS is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise UsageError(f"PARAMS must be a JSON object of names to values, not {params!r}")
    return parsed


def _sample_value(value: object, pipeline_dir: str | None) -> object:
    if isinstance(value, str) and pipeline_dir and not os.path.isabs(value):
        beside = os.path.join(pipeline_dir, value)
        if os.path.isfile(beside):
            return beside
    return value


def _checked(parameter: Parameter, value: object, origin: str, base_dir: str | None) -> object:
    where = f"{origin}: {parameter.name}"
    if value is None:
        if parameter.optional:
            return None
        raise UsageError(f"{where}: null for `{parameter.annotation}`, which is not optional")
    kind = parameter.type
    if kind is dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        day = parse_date(value)
        return day if day is not None else _refuse(where, value, "a date YYYY-MM-DD")
    if kind is bool:
        return value if isinstance(value, bool) else _refuse(where, value, "true or false")
    if kind is int:
        fits = isinstance(value, int) and not isinstance(value, bool)
        return value if fits else _refuse(where, value, "a whole number")
    if kind is float:
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        return float(value) if fits else _refuse(where, value, "a number")
    if not isinstance(value, str):
        return _refuse(where, value, "a string")
    if base_dir and not os.path.isabs(value) and os.path.exists(os.path.join(base_dir, value)):
        return os.path.normpath(os.path.join(base_dir, value))
    return value


def _refuse(where: str, value: object, wanted: str):
    raise UsageError(f"{where}: {json.dumps(value, default=repr)} is not {wanted}")
