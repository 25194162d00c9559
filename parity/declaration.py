"""The declaration API (docs/contract.md, "Your own pipeline"): steps, outputs, a partition.

A pipeline is plain functions and a `Pipeline` that lists them. Everything an adapter needs is
derived here, once, from the functions' signatures: which step feeds which (a parameter named
like another step), the run parameters and their types (every other parameter), the order.
Whatever would only fail later, in one orchestrator, is refused now with one line naming the
step and the parameter.
"""

import datetime as dt
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from parity.errors import DeclarationError

# The run-parameter types every orchestrator can show in its own form.
PARAMETER_TYPES: tuple[type, ...] = (str, int, float, bool, dt.date)
# Names an orchestrator passes to its own tasks (Airflow's context, Dagster's, Prefect's
# runtime) or the harness uses (a backfill's range, the output folder): a step may not take
# them. `publish` is the adapters' last task, so no step may bear that name.
RESERVED = frozenset(
    {
        "context",
        "config",
        "params",
        "ds",
        "ti",
        "run_id",
        "dag_run",
        "logical_date",
        "task_instance",
        "execution_date",
        "start",
        "end",
        "output_dir",
        "self",
    }
)
PARTITIONS = ("date",)
# Folders of the events pipeline's layout in output/, beside which a pipeline's own lives.
RESERVED_PIPELINE_NAMES = frozenset({"events", "backfill", "deployed"})
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_REQUIRED = inspect.Parameter.empty


@dataclass(frozen=True)
class Parameter:
    """A run parameter: one value for every step that takes it."""

    name: str
    type: type
    optional: bool  # annotated `T | None`
    default: object = _REQUIRED

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    @property
    def annotation(self) -> str:
        return self.type.__name__ + (" | None" if self.optional else "")


@dataclass(frozen=True)
class Step:
    """A function under `@step`; still callable as the plain function."""

    function: Callable
    retries: int = 0
    retry_delay_seconds: float = 0.0
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.function.__name__)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)

    @property
    def arguments(self) -> tuple[str, ...]:
        return tuple(inspect.signature(self.function).parameters)


def step(function: Callable | None = None, *, retries: int = 0, retry_delay_seconds: float = 0.0):
    """`@step` (no retries) or `@step(retries=N, retry_delay_seconds=S)`."""

    def declare(function: Callable) -> Step:
        where = f"step {getattr(function, '__name__', function)!r}"
        if not inspect.isfunction(function):
            raise DeclarationError(f"{where}: @step takes a plain function")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise DeclarationError(f"{where}: retries must be a whole number >= 0")
        if (
            isinstance(retry_delay_seconds, bool)
            or not isinstance(retry_delay_seconds, int | float)
            or retry_delay_seconds < 0
        ):
            raise DeclarationError(f"{where}: retry_delay_seconds must be a number >= 0")
        return Step(function, retries, float(retry_delay_seconds))

    return declare(function) if function is not None else declare


@dataclass(frozen=True)
class Output:
    """A published result: `"step"`, or `"step.name"` for one of a step's named results."""

    name: str
    key: Sequence[str]

    def __post_init__(self) -> None:
        key = [self.key] if isinstance(self.key, str) else list(self.key)
        object.__setattr__(self, "key", tuple(key))

    @property
    def step(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def part(self) -> str | None:
        return self.name.split(".", 1)[1] if "." in self.name else None


class Pipeline:
    """Steps, the outputs they publish, and optionally a daily partition.

    `manifest`, optional, records what a run's outputs alone cannot show (counts that must
    reconcile, say): a function whose parameters name steps (their results) or run parameters,
    as a step's do, returning entries added to the run's manifest. It is called once per run,
    before anything is published, so a check that raises a PipelineError publishes nothing.
    """

    def __init__(
        self,
        name: str,
        *,
        steps: Sequence[Step],
        outputs: Sequence[Output],
        partition: str | None = None,
        sample: Mapping[str, object] | None = None,
        sample_dates: tuple[str, str] | None = None,
        manifest: Callable[..., Mapping[str, object]] | None = None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise DeclarationError(
                f"pipeline {name!r}: a name is lower-case letters, digits and _, from a letter"
            )
        if name in RESERVED_PIPELINE_NAMES:
            raise DeclarationError(f"pipeline {name!r}: the name is a folder of the events "
                                   "pipeline's layout under output/; choose another")
        self.name = name
        self.steps: dict[str, Step] = _steps_by_name(name, steps)
        self.dependencies = {s.name: _dependencies(s, self.steps) for s in self.steps.values()}
        self.order = _topological(self.dependencies)
        self.parameters = _parameters(self.steps, self.dependencies)
        self.outputs = _outputs(name, outputs, self.steps)
        self.partition = _partition(name, partition, self.parameters)
        self.sample = dict(sample or {})
        self.sample_dates = _sample_dates(name, sample_dates, self.partition)
        self.manifest = _manifest(name, manifest, self.steps, self.parameters)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, steps={list(self.order)})"

    def depends_on_partition(self, step_name: str) -> bool:
        """Whether the step's result changes with the date: it, or a step it reads, takes it."""
        if self.partition is None:
            return False
        if self.partition in self.steps[step_name].arguments:
            return True
        return any(self.depends_on_partition(name) for name in self.dependencies[step_name])


def _steps_by_name(pipeline: str, steps: Sequence[Step]) -> dict[str, Step]:
    by_name: dict[str, Step] = {}
    for declared in steps:
        if not isinstance(declared, Step):
            raise DeclarationError(
                f"pipeline {pipeline!r}: {getattr(declared, '__name__', declared)!r} is not a "
                "step: decorate it with @step"
            )
        if declared.name in by_name:
            raise DeclarationError(f"pipeline {pipeline!r}: two steps named {declared.name!r}")
        if declared.name in RESERVED | {"publish"} or not _NAME.fullmatch(declared.name):
            raise DeclarationError(
                f"step {declared.name!r}: the name is reserved or not lower_snake_case"
            )
        by_name[declared.name] = declared
    if not by_name:
        raise DeclarationError(f"pipeline {pipeline!r}: it has no steps")
    return by_name


def _dependencies(declared: Step, steps: Mapping[str, Step]) -> tuple[str, ...]:
    found = []
    for parameter in inspect.signature(declared.function).parameters.values():
        where = f"step {declared.name!r}: parameter {parameter.name!r}"
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise DeclarationError(f"{where}: *args and **kwargs cannot be named in a form")
        if parameter.name in RESERVED:
            raise DeclarationError(
                f"{where}: the name is reserved by an orchestrator or the harness; choose another"
            )
        if parameter.name in steps:
            found.append(parameter.name)
        elif _parameter_type(parameter.annotation) is None:
            raise DeclarationError(
                f"{where}: no step is named {parameter.name!r}, and "
                f"{_spelled(parameter.annotation)} is no run-parameter type "
                "(str, int, float, bool, datetime.date, each optionally | None)"
            )
    return tuple(found)


def _parameter_type(annotation: object) -> tuple[type, bool] | None:
    """(type, optional) for a supported annotation, else None."""
    if annotation in PARAMETER_TYPES:
        return annotation, False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        two = len(typing.get_args(annotation)) == 2
        if two and len(members) == 1 and members[0] in PARAMETER_TYPES:
            return members[0], True
    return None


def _spelled(annotation: object) -> str:
    if annotation is _REQUIRED:
        return "no annotation"
    return getattr(annotation, "__name__", None) or str(annotation)


def _topological(dependencies: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The steps in an order where each comes after what it reads (declaration order within)."""
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise DeclarationError(f"step {name!r}: its dependencies form a cycle: {cycle}")
        visiting.append(name)
        for dependency in dependencies[name]:
            visit(dependency)
        visiting.pop()
        order.append(name)

    for name in dependencies:
        visit(name)
    return tuple(order)


def _parameters(
    steps: Mapping[str, Step], dependencies: Mapping[str, tuple[str, ...]]
) -> dict[str, Parameter]:
    found: dict[str, Parameter] = {}
    first_seen: dict[str, str] = {}
    for declared in steps.values():
        for parameter in inspect.signature(declared.function).parameters.values():
            if parameter.name in dependencies[declared.name]:
                continue
            kind, optional = _parameter_type(parameter.annotation)
            default = parameter.default
            where = f"step {declared.name!r}: parameter {parameter.name!r}"
            if default is None and not optional:
                raise DeclarationError(f"{where}: a default of None needs `| None`")
            if default is not _REQUIRED and default is not None and not _fits(default, kind):
                raise DeclarationError(f"{where}: the default {default!r} is no {kind.__name__}")
            declared_here = Parameter(parameter.name, kind, optional, default)
            if parameter.name in found and found[parameter.name] != declared_here:
                other = found[parameter.name]
                raise DeclarationError(
                    f"{where}: declared `{declared_here.annotation}` with default "
                    f"{_default(declared_here)} here but `{other.annotation}` with default "
                    f"{_default(other)} in step {first_seen[parameter.name]!r}: one name is "
                    "one value in every step"
                )
            found.setdefault(parameter.name, declared_here)
            first_seen.setdefault(parameter.name, declared.name)
    return found


def _fits(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    return isinstance(value, kind)


def _default(parameter: Parameter) -> str:
    return "none (required)" if parameter.required else repr(parameter.default)


def _outputs(
    pipeline: str, outputs: Sequence[Output], steps: Mapping[str, Step]
) -> tuple[Output, ...]:
    names: set[str] = set()
    for output in outputs:
        if not isinstance(output, Output):
            raise DeclarationError(f"pipeline {pipeline!r}: {output!r} is not an Output")
        where = f"output {output.name!r}"
        if output.step not in steps:
            raise DeclarationError(f"{where}: no step is named {output.step!r}")
        if output.part is not None and not _NAME.fullmatch(output.part):
            raise DeclarationError(f"{where}: {output.part!r} is not lower_snake_case")
        if output.name in names:
            raise DeclarationError(f"{where}: two outputs of one name")
        key = list(output.key)
        if not key or not all(isinstance(column, str) and column for column in key):
            raise DeclarationError(f"{where}: key must name one or more columns (its grain)")
        if len(set(key)) != len(key):
            raise DeclarationError(f"{where}: key names a column twice")
        names.add(output.name)
    if not names:
        raise DeclarationError(f"pipeline {pipeline!r}: it publishes no output")
    return tuple(outputs)


def _partition(
    pipeline: str, partition: str | None, parameters: Mapping[str, Parameter]
) -> str | None:
    if partition is None:
        return None
    if partition not in PARTITIONS:
        raise DeclarationError(
            f"pipeline {pipeline!r}: partition must be 'date' or None, not {partition!r}"
        )
    declared = parameters.get(partition)
    if declared is None or declared.type is not dt.date:
        raise DeclarationError(
            f"pipeline {pipeline!r}: partition='date' needs a step parameter "
            "`date: datetime.date` (or `date: date | None = None`)"
        )
    return partition


def _sample_dates(
    pipeline: str, dates: tuple[str, str] | None, partition: str | None
) -> tuple[dt.date, dt.date] | None:
    if dates is None:
        return None
    where = f"pipeline {pipeline!r}: sample_dates"
    if partition is None:
        raise DeclarationError(f"{where}: only a partitioned pipeline has a backfill")
    try:
        first, last = (dt.date.fromisoformat(day) for day in dates)
    except (TypeError, ValueError):
        raise DeclarationError(f"{where}: two dates YYYY-MM-DD, first and last") from None
    if last < first:
        raise DeclarationError(f"{where}: {dates[1]} is before {dates[0]}")
    return first, last


def _manifest(pipeline: str, function: Callable | None, steps: Mapping[str, Step],
              parameters: Mapping[str, Parameter]) -> Callable | None:  # fmt: skip
    if function is None:
        return None
    where = f"pipeline {pipeline!r}: manifest"
    if not inspect.isfunction(function):
        raise DeclarationError(f"{where}: a plain function of step results and run parameters")
    for name in inspect.signature(function).parameters:
        if name not in steps and name not in parameters:
            raise DeclarationError(f"{where}: parameter {name!r} is neither a step nor a run "
                                   "parameter of a step")  # fmt: skip
    return function
