"""The MCP server of the host: one endpoint per MozaiksAI folder, `/<Folder>/mcp`, over
streamable HTTP in stateless mode with JSON answers (the official `mcp` SDK's low-level
`Server`), so any instance of the host answers any request and nothing is kept between them.

`tools/list` lists the folder's Python tools with the JSON Schema of their parameters
(`context_variables` left out). `tools/call` checks the arguments against that schema, calls
the function (sync or async) with the context variables of the call's `_meta`, and answers
with the function's return value as text (JSON for anything but a string) and, for objects,
as `structuredContent`; the `_meta` of the answer carries what the tool changed (see
`mozaiks_toolhost.calls`). An exception of the tool is an error result (`isError: true`, its
message), which the runtime gives back to the model.
"""

from __future__ import annotations

import contextlib
import inspect
import json
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server

from . import calls
from .folder import Folder


def folder_server(folder: Folder) -> Server:
    """The MCP server of one folder."""

    async def list_tools(ctx, params) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(name=t.name, description=t.description, input_schema=t.input_schema)
                for t in folder.tools.values()
            ]
        )

    async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
        tool = folder.tools.get(params.name)
        if tool is None:
            return _error(f"{folder.name} has no tool {params.name}")
        meta = _meta(params)
        try:
            arguments = tool.arguments_model.model_validate(params.arguments or {})
        except Exception as e:  # pydantic.ValidationError
            return _error(f"the arguments of {tool.name} do not match its parameters: {e}")
        kwargs = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        context = _context_variables(meta.get(calls.CONTEXT))
        before = json.loads(json.dumps(dict(context), default=str))
        if tool.takes_context:
            kwargs["context_variables"] = context
        call, token = calls.begin(meta.get(calls.UI_RESPONSES) or [])
        out_meta: dict[str, Any] = {}
        try:
            value = tool.function(**kwargs)
            if inspect.isawaitable(value):
                value = await value
        except calls.Pending as pending:
            out_meta[calls.INPUT_REQUEST] = pending.request
            value = {"status": "waiting for the user's answer"}
        except Exception as e:
            return _error(f"{tool.name} failed: {e}", _changes(before, context, call))
        finally:
            calls.end(token)
        out_meta.update(_changes(before, context, call))
        value = _reply(value, out_meta, context, before)
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        structured = value if isinstance(value, dict) else None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=structured,
            is_error=False,
            _meta=out_meta or None,
        )

    return Server(
        f"mozaiks-toolhost/{folder.name}",
        version="0.1.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def _meta(params: types.CallToolRequestParams) -> dict[str, Any]:
    meta = params.meta
    if meta is None:
        return {}
    if hasattr(meta, "model_dump"):
        return meta.model_dump(by_alias=True, exclude_none=True)
    return dict(meta)


def _context_variables(value: Any):
    from autogen.agentchat.group import ContextVariables  # the shim, or AG2's own

    data = dict(value) if isinstance(value, dict) else {}
    if issubclass(ContextVariables, dict):
        return ContextVariables(data)
    return ContextVariables(data=data)


def _as_dict(context: Any) -> dict[str, Any]:
    for attribute in ("to_dict", "model_dump"):
        method = getattr(context, attribute, None)
        if callable(method):
            return dict(method())
    data = getattr(context, "data", context)
    return dict(data)


def _changes(before: dict[str, Any], context: Any, call: calls.Call) -> dict[str, Any]:
    """The `_meta` of what the tool changed: context variables set or changed, surfaces."""
    now = json.loads(json.dumps(_as_dict(context), default=str))
    changed = {k: v for k, v in now.items() if before.get(k, object()) != v}
    meta: dict[str, Any] = {}
    if changed:
        meta[calls.CONTEXT] = changed
    if call.surfaces:
        meta[calls.UI_SURFACES] = call.surfaces
    return meta


def _reply(value: Any, meta: dict[str, Any], context: Any, before: dict[str, Any]) -> Any:
    """A `ReplyResult` (AG2's reply with a target and context): its message, its handoff and
    its context variables in `_meta`; anything else as it is."""
    if type(value).__name__ != "ReplyResult":
        return value
    target = getattr(value, "target", None)
    if target is not None:
        name = None
        for attribute in ("handoff_name", "display_name"):
            method = getattr(target, attribute, None)
            if callable(method):
                name = method()
                break
        name = name or getattr(target, "agent_name", None)
        if name:
            meta[calls.HANDOFF] = {"revert_to_user": "user"}.get(str(name).lower(), str(name))
    updates = getattr(value, "context_variables", None)
    if updates is not None:
        merged = dict(meta.get(calls.CONTEXT, {}))
        merged.update(json.loads(json.dumps(_as_dict(updates), default=str)))
        meta[calls.CONTEXT] = {k: v for k, v in merged.items() if before.get(k, object()) != v}
        if not meta[calls.CONTEXT]:
            del meta[calls.CONTEXT]
    return str(getattr(value, "message", "") or "")


def _error(message: str, meta: dict[str, Any] | None = None) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)],
        is_error=True,
        _meta=meta or None,
    )


class Host:
    """The ASGI app: `/<Folder>/mcp` for each folder."""

    def __init__(self, folders: list[Folder], host: str = "127.0.0.1"):
        self.apps = {}
        for folder in folders:
            app = folder_server(folder).streamable_http_app(
                streamable_http_path=f"/{folder.name}/mcp",
                stateless_http=True,
                json_response=True,
                host=host,
            )
            self.apps[folder.name] = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        parts = scope.get("path", "").strip("/").split("/")
        app = self.apps.get(parts[0]) if parts else None
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"no such workflow folder on this tool host"})
            return
        await app(scope, receive, send)

    async def _lifespan(self, receive, send):
        message = await receive()
        async with contextlib.AsyncExitStack() as stack:
            try:
                for app in self.apps.values():
                    await stack.enter_async_context(app.router.lifespan_context(app))
            except Exception as e:
                await send({"type": "lifespan.startup.failed", "message": str(e)})
                return
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
