"""Stand-in for `autogen.agentchat.group`: what MozaiksAI tools return and receive."""

from __future__ import annotations

from typing import Any


class ContextVariables(dict):
    """AG2's context variables: a dict with AG2's accessors. The host passes the
    conversation's variables in and sends the changed ones back to the runtime."""

    @property
    def data(self) -> dict[str, Any]:
        return self

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def remove(self, key: str) -> bool:
        return self.pop(key, None) is not None

    def contains(self, key: str) -> bool:
        return key in self

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


class AgentNameTarget:
    def __init__(self, agent_name: str):
        self.agent_name = agent_name

    def handoff_name(self) -> str:
        return self.agent_name


class AgentTarget(AgentNameTarget):
    def __init__(self, agent: Any):
        super().__init__(getattr(agent, "name", agent))


class RevertToUserTarget:
    def handoff_name(self) -> str:
        return "user"


class TerminateTarget:
    def handoff_name(self) -> str:
        return "terminate"


class ReplyResult:
    """A tool's reply: the message the model reads, an optional target (a handoff) and the
    context variables to set."""

    def __init__(self, message: str = "", target: Any = None, context_variables: Any = None):
        self.message = message
        self.target = target
        self.context_variables = context_variables
