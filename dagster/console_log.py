"""The console every Dagster run of this project logs to, local or launched: Dagster's log on
stdout as the other wrappers log (stderr holds only the one line of a failure), one line per
retry, and the whole log in a file when the run config names one."""

import logging
import sys
from pathlib import Path

import dagster as dg
from parity import console
from parity.errors import PipelineError


@dg.logger(
    {
        "log_level": dg.Field(str, is_required=False, default_value="INFO"),
        "log_file": dg.Field(str, is_required=False, default_value=""),
    },
    description="Dagster's console log on stdout, as the other wrappers log (stderr is kept "
    "for the one-line reason of a failure), with one line per retry; with `log_file`, every "
    "event in full there, and a failure of the pipeline's own (its traceback) only there.",
)
def stdout_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger("dagster", level=logging.DEBUG)
    formatter = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(formatter)
    console.addFilter(_ConsoleRecords(logging.getLevelName(config["log_level"]),
                                      quiet_failures=bool(config["log_file"])))  # fmt: skip
    logger.addHandler(console)
    if config["log_file"]:
        Path(config["log_file"]).parent.mkdir(parents=True, exist_ok=True)
        full = logging.FileHandler(config["log_file"])
        full.setFormatter(formatter)
        logger.addHandler(full)
    return logger


class _ConsoleRecords(logging.Filter):
    """What the console shows of a run's log: records from `level` up, a retry as one line
    (Dagster logs it at debug level, with no attempt number), and, when the log has a file,
    no failure of the pipeline's own: its reason ends the command and its traceback is in the
    file. A failure that is no error of ours (a bug) keeps its traceback on the console."""

    def __init__(self, level: int, quiet_failures: bool) -> None:
        super().__init__()
        self.level, self.quiet_failures, self.retries = level, quiet_failures, {}

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        if event is not None and event.is_step_up_for_retry:
            step = event.step_key or "?"
            self.retries[step] = attempt = self.retries.get(step, 0) + 1
            data = event.step_retry_data
            reason = _error_text(data.error)
            record.msg = console.retry_line(step, attempt, reason, data.seconds_to_wait or 0)
            record.args = ()
            record.levelno, record.levelname = logging.INFO, "INFO"
            return True
        if record.levelno < self.level:
            return False
        error = getattr(event, "event_specific_data", None) if event is not None else None
        info = getattr(error, "error", None)
        return not (self.quiet_failures and record.levelno >= logging.ERROR
                    and (info is None or _is_ours(info)))  # fmt: skip


def _error_chain(info: object) -> list:
    chain = []
    while info is not None:
        chain.append(info)
        info = getattr(info, "cause", None)
    return chain


def _pipeline_error_names() -> set[str]:
    """The class names Dagster records for the pipeline's own errors: parity's, and those a
    pipeline derives from them (the events pipeline's InputFileError), once it is loaded."""
    names, classes = set(), [PipelineError]
    while classes:
        kind = classes.pop()
        names.add(kind.__name__)
        classes.extend(kind.__subclasses__())
    return names


def _is_ours(info: object) -> bool:
    """Whether a recorded error is, or was caused by, one of the pipeline's own errors."""
    ours = _pipeline_error_names()
    return any(link.cls_name in ours for link in _error_chain(info))


def _error_text(info: object) -> str:
    """The innermost error's class and message: the reason, not Dagster's wrapping of it."""
    chain = _error_chain(info)
    if not chain:
        return "no error recorded"
    last = chain[-1]
    lines = (last.message or "").strip().splitlines() or [""]
    return f"{last.cls_name}: {lines[0].split(': ', 1)[-1]}" if last.cls_name else lines[0]


def run_config(ops: dict, log_file: Path | None = None) -> dict:
    """A run's config: the assets' parameters, and the log on stdout (a logger is used only
    when the run config names it), in full in `log_file` when one is given."""
    logger = {"log_level": "INFO", **({"log_file": str(log_file)} if log_file else {})}
    return {"ops": ops, "loggers": {"console": {"config": logger}}}
