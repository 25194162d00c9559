"""`PIPELINE=`: a file path anywhere on disk, or an importable module name, holding a
`Pipeline` (named `pipeline`, or the only one in the module)."""

import importlib
import importlib.util
import os
import sys
from types import ModuleType

from parity import requirements
from parity.declaration import Pipeline
from parity.errors import DeclarationError, UsageError


def load(reference: str) -> tuple[Pipeline, str | None]:
    """The pipeline `reference` names, and the folder of its file (where a sample lives)."""
    module = _module(reference)
    pipelines = {name: value for name, value in vars(module).items() if isinstance(value, Pipeline)}
    if "pipeline" in pipelines:
        found = pipelines["pipeline"]
    elif len(pipelines) == 1:
        found = next(iter(pipelines.values()))
    else:
        named = ", ".join(sorted(pipelines)) or "none"
        raise UsageError(f"PIPELINE={reference}: name one Pipeline `pipeline` (found: {named})")
    source = getattr(module, "__file__", None)
    return found, os.path.dirname(os.path.abspath(source)) if source else None


def _module(reference: str) -> ModuleType:
    is_file = reference.endswith(".py") or os.sep in reference
    if is_file and not os.path.isfile(reference):
        raise UsageError(f"PIPELINE={reference}: no such file")
    try:
        if not is_file:
            spec = importlib.util.find_spec(reference)
            requirements.activate(os.path.dirname(spec.origin) if spec and spec.origin else None)
            return importlib.import_module(reference)
        path = os.path.abspath(reference)
        requirements.activate(os.path.dirname(path))
        name = f"parity_pipeline_{os.path.splitext(os.path.basename(path))[0]}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up by name
        spec.loader.exec_module(module)
        return module
    except (DeclarationError, UsageError):
        raise
    except ModuleNotFoundError as exc:
        if not is_file and exc.name == reference.split(".")[0]:
            raise UsageError(f"PIPELINE={reference}: no such file or module") from None
        raise UsageError(
            f"PIPELINE={reference}: it imports {exc.name!r}, which is not "
            "installed in this environment"
        ) from None
    except SyntaxError as exc:
        raise UsageError(f"PIPELINE={reference}: line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:  # whatever the file raises at import: one line, not a traceback
        message = " ".join(str(exc).split())
        raise UsageError(f"PIPELINE={reference}: importing it failed: "
                         f"{type(exc).__name__}: {message}") from None  # fmt: skip


def reference_of(pipeline: Pipeline) -> str:
    """What names `pipeline` to another process: its file's absolute path when it was loaded
    from a file, else its module's name (for a process that loads it again with `load`)."""
    module = next(m for m in list(sys.modules.values())
                  if any(value is pipeline for value in vars(m).values()))  # fmt: skip
    file = getattr(module, "__file__", None)
    named_by_file = module.__name__.startswith("parity_pipeline_") and file
    return os.path.abspath(file) if named_by_file else module.__name__
