"""Stand-in for `mozaiksai.core.workflow.ui_tools`: UI interactions through the runtime.

`use_ui_tool` asks the user through the chat UI. On the host a tool call cannot stay open while
the user answers (each invocation of the runtime is one request), so the call is replayed: the
first time, `use_ui_tool` stops the tool and the host answers the runtime with an
`input_request`, and the run ends `waiting`; when the user answers, the runtime calls the tool
again with the same arguments and the answers so far, and `use_ui_tool` returns them in order.
A tool must therefore do nothing irreversible before its UI calls. `emit_ui_surface` shows a
surface without waiting (the runtime lists it in the output's `ui_surfaces`).
"""

from __future__ import annotations

import contextvars
import uuid
from typing import Any

from mozaiks_toolhost import calls


class UIToolError(Exception):
    """A UI interaction failed."""


async def use_ui_tool(
    tool_id: str,
    payload: dict[str, Any],
    *,
    chat_id: str | None = None,
    workflow_name: str = "",
    display: str | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    return calls.current().ask(tool_id, payload, display)


async def emit_ui_surface(
    tool_id: str,
    payload: dict[str, Any],
    *,
    chat_id: str | None = None,
    workflow_name: str = "",
    display: str | None = None,
    agent_name: str | None = None,
) -> str:
    calls.current().show(tool_id, payload, display)
    return uuid.uuid4().hex


__all__ = ["UIToolError", "use_ui_tool", "emit_ui_surface", "contextvars"]
