"""An Agent2Agent (A2A) server for the tests, built with the official `a2a-sdk` Python package
(`DefaultRequestHandler`, `InMemoryTaskStore`, JSON-RPC routes with v0.3 compatibility), on
127.0.0.1.

    a2a_server.py

Prints `listening on http://127.0.0.1:PORT` once it accepts connections. The agent card is at
`/.well-known/agent-card.json` (name `echo-agent`, streaming); its JSON-RPC interface is POST
`/a2a`, which answers both the v0.3 method names the Serverless Workflow DSL uses
(`message/send`, `message/stream`, `tasks/get`, `tasks/cancel`, `tasks/resubscribe`, ...; a
request without an `A2A-Version` header is taken as v0.3) and the v1.0 ones (`SendMessage`,
`ListTasks`, ... with `A2A-Version: 1.0`). The v0.3 layer has no `tasks/list` (-32601).
Every request's method and path are printed as `request {json}` lines on stdout, so a test can
assert what the client called.

The agent echoes: a user message whose text is T makes a task that goes `working`, gets an
artifact `echo` whose text is `echo: T`, then `completed` (a stream sees those three events
after the initial task). The text `fail` ends the task `failed` with the status message
`failed on purpose`; `slow` waits 30 seconds before answering (cancelable with `tasks/cancel`).
"""

import asyncio
import contextlib
import json
import socket
import sys

try:
    import uvicorn
    from a2a.helpers import new_task, new_text_part
    from a2a.server.agent_execution import AgentExecutor, RequestContext
    from a2a.server.events import EventQueue
    from a2a.server.request_handlers import DefaultRequestHandler
    from a2a.server.routes.agent_card_routes import create_agent_card_routes
    from a2a.server.routes.jsonrpc_routes import create_jsonrpc_routes
    from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
    from a2a.types.a2a_pb2 import (
        AgentCapabilities,
        AgentCard,
        AgentInterface,
        AgentSkill,
        TaskState,
    )
    from starlette.applications import Starlette
except ImportError as e:
    sys.exit(f"cannot import the a2a SDK ({e}): pip install 'a2a-sdk[http-server]' uvicorn")


class EchoExecutor(AgentExecutor):
    """Answers `echo: T` as an artifact; `fail` fails the task, `slow` sleeps 30 s first."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        text = context.get_user_input()
        task = context.current_task
        if task is None:
            task = new_task(
                context.task_id,
                context.context_id,
                TaskState.TASK_STATE_SUBMITTED,
                history=[context.message],
            )
            await event_queue.enqueue_event(task)
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.start_work()
        if text == "slow":
            await asyncio.sleep(30)
        if text == "fail":
            await updater.failed(updater.new_agent_message([new_text_part("failed on purpose")]))
            return
        await updater.add_artifact([new_text_part(f"echo: {text}")], name="echo", last_chunk=True)
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        await TaskUpdater(event_queue, context.task_id, context.context_id).cancel()


def agent_card(url: str) -> AgentCard:
    return AgentCard(
        name="echo-agent",
        description="Echoes the text it is sent.",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0"),
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="0.3"),
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="echo",
                description="Answers `echo: T` for the text T; `fail` fails, `slow` takes 30 s.",
                tags=["echo", "test"],
                examples=["hello"],
            )
        ],
    )


class Recorder:
    """ASGI middleware printing each HTTP request's method and path."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            print("request " + json.dumps({"method": scope["method"], "path": scope["path"]}), flush=True)
        return await self.app(scope, receive, send)


async def main():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    card = agent_card(f"{base}/a2a")
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(), task_store=InMemoryTaskStore(), agent_card=card
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        await handler.aclose()

    routes = create_agent_card_routes(card) + create_jsonrpc_routes(
        handler, "/a2a", enable_v0_3_compat=True
    )
    app = Starlette(routes=routes, lifespan=lifespan)
    config = uvicorn.Config(Recorder(app), log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    started = asyncio.ensure_future(web.serve(sockets=[sock]))
    while not web.started:
        if started.done():
            started.result()
            return
        await asyncio.sleep(0.01)
    print(f"listening on {base}", flush=True)
    await started


if __name__ == "__main__":
    asyncio.run(main())
