"""A MozaiksAI workflow folder's Python tools: `tools.yaml` entries and their functions.

Each `tools.yaml` entry with a `file` and a `function` that is not a UI tool (`UI_Tool` and
`UI_Surface` are answered by the runtime itself, without Python) is loaded: the file (relative
to the folder, or to its `tools/` directory, as MozaiksAI writes both) is imported as a module,
and the function taken from it. Imports of the folder's own modules by their MozaiksAI package
path (`factory_app.workflows.<Folder>.tools.<module>`, any prefix) resolve to the folder's
files. AG2 and MozaiksAI modules a tool commonly imports (`autogen.agentchat.group`,
`mozaiksai.core.workflow.ui_tools`, `logs.logging_config`, `logs.tools_logs`) are provided by
`mozaiks_toolhost.shims` when not installed. Any other import that fails stops the load with
a `ToolLoadError` naming the tool, its file and the missing module.

A tool's parameters are its function's, except `context_variables` (AG2's convention: the
runtime's context variables, passed in by the host) — their JSON Schema comes from the
signature (pydantic, as AG2 derives it; `Annotated[..., Field(description=...)]` kept).
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.util
import inspect
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from . import shims

#: Tool types the runtime answers itself (no Python runs for them).
UI_TYPES = ("UI_Tool", "UI_Surface")
#: The parameter AG2 fills with the conversation's context variables.
CONTEXT_PARAMETER = "context_variables"


class ToolLoadError(Exception):
    """A folder's tool cannot be served: names the folder, the tool and why."""


@dataclass
class Tool:
    name: str
    agent: str
    description: str
    function: Callable[..., Any]
    #: JSON Schema of the parameters the model fills.
    input_schema: dict[str, Any]
    #: Whether the function takes `context_variables`.
    takes_context: bool
    #: Validates and converts the model's arguments.
    arguments_model: Any = field(repr=False, default=None)


@dataclass
class Folder:
    name: str
    path: Path
    tools: dict[str, Tool]


def load_folder(path: Path) -> Folder:
    """The Python tools of the MozaiksAI folder at `path`."""
    path = Path(path).resolve()
    name = path.name
    tools_yaml = path / "tools.yaml"
    tools: dict[str, Tool] = {}
    if not tools_yaml.is_file():
        return Folder(name, path, tools)
    try:
        document = yaml.safe_load(tools_yaml.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ToolLoadError(f"{tools_yaml}: not YAML ({e})") from e
    entries = document.get("tools") or [] if isinstance(document, dict) else []
    if not isinstance(entries, list):
        raise ToolLoadError(f"{tools_yaml}: `tools` must be a list")
    shims.install()
    _FolderFinder.register(path)
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ToolLoadError(f"{tools_yaml}: /tools/{index} is not a mapping")
        if entry.get("tool_type") in UI_TYPES and entry.get("ui"):
            continue
        function_name = entry.get("function")
        file = entry.get("file")
        if not function_name or not file:
            raise ToolLoadError(f"{tools_yaml}: /tools/{index} needs `file` and `function`")
        if function_name in tools:
            raise ToolLoadError(f"{tools_yaml}: tool {function_name} is listed twice")
        source = _source(path, file)
        if source is None:
            raise ToolLoadError(
                f"{name}: tool {function_name}: its file {file} is not in the folder (nor in its tools/)"
            )
        module = _import(name, function_name, source)
        function = getattr(module, function_name, None)
        if not callable(function):
            raise ToolLoadError(
                f"{name}: tool {function_name}: {source.relative_to(path)} defines no function {function_name}"
            )
        schema, model, takes_context = _parameters(function)
        description = entry.get("description") or inspect.getdoc(function) or ""
        tools[function_name] = Tool(
            name=function_name,
            agent=str(entry.get("agent") or ""),
            description=" ".join(str(description).split()),
            function=function,
            input_schema=schema,
            takes_context=takes_context,
            arguments_model=model,
        )
    return Folder(name, path, tools)


def _source(folder: Path, file: str) -> Path | None:
    for candidate in (folder / file, folder / "tools" / file):
        candidate = candidate.resolve()
        if candidate.is_file() and folder in candidate.parents:
            return candidate
    return None


def _import(folder: str, tool: str, source: Path):
    module_name = f"mozaiks_toolhost.folders.{folder}.{source.stem}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None:
        raise ToolLoadError(f"{folder}: tool {tool}: {source.name} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ImportError as e:
        del sys.modules[module_name]
        missing = e.name or str(e)
        raise ToolLoadError(
            f"{folder}: tool {tool}: {source.name} imports `{missing}`, which the tool host cannot provide "
            f"(install it beside the host, or remove the import)"
        ) from e
    except Exception as e:  # the module's own code failed at import
        del sys.modules[module_name]
        raise ToolLoadError(f"{folder}: tool {tool}: importing {source.name} failed: {e!r}") from e
    return module


def _parameters(function: Callable[..., Any]):
    """The JSON Schema of the model's arguments, a pydantic model to check them, and whether
    the function takes `context_variables`."""
    from pydantic import create_model

    signature = inspect.signature(function)
    try:
        hints = __import__("typing").get_type_hints(function, include_extras=True)
    except Exception:
        hints = {}
    fields: dict[str, Any] = {}
    takes_context = False
    for name, parameter in signature.parameters.items():
        if name == CONTEXT_PARAMETER:
            takes_context = True
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(name, parameter.annotation)
        if annotation is inspect.Parameter.empty:
            annotation = Any
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (annotation, default)
    model = create_model(f"{function.__name__}_arguments", **fields)
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema, model, takes_context


class _FolderFinder(importlib.abc.MetaPathFinder):
    """Resolves `<prefix>.<Folder>.tools.<module>` (and the packages on the way) to the
    folder's files, as MozaiksAI's package layout imports them. The prefixes are the ones the
    folder's own sources import (read with `ast`), so no other missing module is hidden."""

    folders: dict[str, Path] = {}
    prefixes: set[str] = set()

    @classmethod
    def register(cls, path: Path) -> None:
        cls.folders[path.name] = path
        for source in path.rglob("*.py"):
            try:
                tree = ast.parse(source.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                for name in names:
                    parts = name.split(".")
                    if path.name in parts[1:]:
                        at = parts.index(path.name)
                        cls.prefixes.update(".".join(parts[:i]) for i in range(1, at + 1))
        if not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.append(cls())

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.prefixes:
            return importlib.util.spec_from_loader(fullname, _Namespace(), is_package=True)
        parts = fullname.split(".")
        for folder, root in self.folders.items():
            if folder not in parts:
                continue
            rest = parts[parts.index(folder) + 1 :]
            if not rest:
                return importlib.util.spec_from_loader(fullname, _Namespace(), is_package=True)
            file = root.joinpath(*rest)
            if file.with_suffix(".py").is_file():
                return importlib.util.spec_from_file_location(fullname, file.with_suffix(".py"))
            if file.is_dir():
                return importlib.util.spec_from_loader(fullname, _Namespace(), is_package=True)
        return None


class _Namespace(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []
