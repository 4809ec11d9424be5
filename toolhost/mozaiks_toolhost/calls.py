"""One tool call's exchange with the runtime (the `_meta` protocol of `context: true` servers).

The runtime's `tools/call` carries, in `params._meta`:
- `mozaiks.ai/context_variables`: the conversation's context variables (an object);
- `mozaiks.ai/ui_responses`: on a replayed call, the user's answers to the tool's earlier
  `use_ui_tool` calls, in order.

The host's result carries, in `_meta`:
- `mozaiks.ai/context_variables`: the variables the tool set or changed (merged by the runtime);
- `mozaiks.ai/handoff`: the agent a returned `ReplyResult` targets (`user`, `terminate`, or an
  agent's name);
- `mozaiks.ai/input_request`: `{component, mode, payload}` when the tool asks the user
  (`use_ui_tool`) and has no answer yet: the runtime ends the run `waiting` and, on resume,
  calls the tool again with the answers;
- `mozaiks.ai/ui_surfaces`: `[{component, mode, payload}]` shown with `emit_ui_surface`.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import Any

CONTEXT = "mozaiks.ai/context_variables"
UI_RESPONSES = "mozaiks.ai/ui_responses"
HANDOFF = "mozaiks.ai/handoff"
INPUT_REQUEST = "mozaiks.ai/input_request"
UI_SURFACES = "mozaiks.ai/ui_surfaces"

_current: contextvars.ContextVar["Call"] = contextvars.ContextVar("mozaiks_toolhost_call")


class Pending(BaseException):
    """Raised by `use_ui_tool` when the user has not answered yet (a BaseException, so that a
    tool's `except Exception` does not swallow it)."""

    def __init__(self, request: dict[str, Any]):
        super().__init__("waiting for the user's answer")
        self.request = request


@dataclass
class Call:
    answers: list[Any] = field(default_factory=list)
    asked: int = 0
    surfaces: list[dict[str, Any]] = field(default_factory=list)

    def ask(self, component: str, payload: dict[str, Any], display: str | None) -> Any:
        if self.asked < len(self.answers):
            answer = self.answers[self.asked]
            self.asked += 1
            return answer
        raise Pending({"component": component, "mode": display or "inline", "payload": payload})

    def show(self, component: str, payload: dict[str, Any], display: str | None) -> None:
        self.surfaces.append({"component": component, "mode": display or "inline", "payload": payload})


def current() -> Call:
    call = _current.get(None)
    if call is None:
        raise RuntimeError("use_ui_tool / emit_ui_surface called outside a tool call of the host")
    return call


def begin(answers: list[Any]) -> tuple[Call, contextvars.Token]:
    call = Call(answers=list(answers))
    return call, _current.set(call)


def end(token: contextvars.Token) -> None:
    _current.reset(token)
