"""Stand-ins for the AG2 and MozaiksAI modules MozaiksAI tools import, installed by `install()`
only where the real module is not importable. They keep the tools' conventions working on the
host: `ContextVariables` and `ReplyResult` with a target (a handoff), `use_ui_tool` /
`emit_ui_surface` (UI interactions answered through the runtime), and the logging helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent

#: Module name → the stand-in file under shims/ (packages on the way are made as needed).
PROVIDED = {
    "autogen": "autogen/__init__.py",
    "autogen.agentchat": "autogen/agentchat/__init__.py",
    "autogen.agentchat.group": "autogen/agentchat/group.py",
    "mozaiksai": "mozaiksai/__init__.py",
    "mozaiksai.core": "mozaiksai/core/__init__.py",
    "mozaiksai.core.workflow": "mozaiksai/core/workflow/__init__.py",
    "mozaiksai.core.workflow.ui_tools": "mozaiksai/core/workflow/ui_tools.py",
    "logs": "logs/__init__.py",
    "logs.logging_config": "logs/logging_config.py",
    "logs.tools_logs": "logs/tools_logs.py",
}


def install() -> None:
    """Makes each stand-in importable, unless its real top-level package is installed."""
    real = {
        top
        for top in {name.split(".")[0] for name in PROVIDED}
        if top not in sys.modules and importlib.util.find_spec(top) is not None
    }
    for name, file in PROVIDED.items():
        if name in sys.modules or name.split(".")[0] in real:
            continue
        package = file.endswith("__init__.py")
        spec = importlib.util.spec_from_file_location(
            name, HERE / file, submodule_search_locations=[] if package else None
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
