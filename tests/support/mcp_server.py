"""A Model Context Protocol server for the tests, built with the official `mcp` Python SDK
(`MCPServer`, streamable HTTP transport), on 127.0.0.1.

    mcp_server.py [--json] [--stateless] [--token TOKEN] [--sigv4 KEY_ID:SECRET]

Prints `listening on http://127.0.0.1:PORT/mcp` once it accepts connections. `--json` answers
POSTs with JSON bodies instead of SSE streams; `--stateless` issues no `Mcp-Session-Id`;
`--token` requires `Authorization: Bearer TOKEN` (401 otherwise); `--sigv4` requires every request
to be signed with AWS Signature V4 for service `lambda` with those credentials, as a Lambda
Function URL with `AuthType: AWS_IAM` does (403 otherwise; checked with botocore's signer). Every request's method,
`Mcp-Session-Id` and `MCP-Protocol-Version` headers are printed as `request {json}` lines on
stdout, so a test can assert what the client sent (initialize first, the DELETE at the end).

Tools: `add(a, b)` (a structured result), `greet(name)` (text), `fail(reason)` (an error
result, `isError: true`), `slow(seconds)`; a prompt `review(topic)`; a resource
`memo://readme` and a template `memo://notes/{name}`.
"""

import argparse
import asyncio
import json
import socket
import sys

try:
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
except ImportError as e:
    sys.exit(f"cannot import the mcp SDK ({e}): pip install mcp")

server = MCPServer("mozaiks-test-tools", version="1.0.0")


@server.tool(description="Adds two integers.")
def add(a: int, b: int) -> dict:
    return {"sum": a + b}


@server.tool(description="Greets someone by name.")
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@server.tool(description="Always fails, with the reason given.")
def fail(reason: str) -> str:
    raise ToolError(f"failed on purpose: {reason}")


@server.tool(description="Answers after the given number of seconds.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@server.prompt(description="A review prompt.")
def review(topic: str) -> str:
    return f"Please review {topic}."


@server.resource("memo://readme", description="The readme.")
def readme() -> str:
    return "Read me first."


@server.resource("memo://notes/{name}", description="A note by name.")
def note(name: str) -> str:
    return f"Note {name}."


def sigv4_valid(credentials, method, host, path, query, headers, body):
    """Whether the request's SigV4 signature is the one botocore computes."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(
        part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 "):].split(",")
    )
    key_id, date, region, service, _ = fields["Credential"].split("/")
    if key_id != credentials[0] or service != "lambda":
        return False
    signed = fields["SignedHeaders"].split(";")
    url = f"http://{host}{path}" + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body, headers={h: headers[h] for h in signed if h in headers})
    request.context["timestamp"] = headers.get("x-amz-date", "")
    auth = SigV4Auth(Credentials(credentials[0], credentials[1]), "lambda", region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return expected == fields["Signature"]


class Recorder:
    """ASGI middleware printing each HTTP request's method and MCP headers."""

    def __init__(self, app, token, sigv4=None):
        self.app = app
        self.token = token
        self.sigv4 = sigv4

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        print(
            "request "
            + json.dumps(
                {
                    "method": scope["method"],
                    "session": headers.get("mcp-session-id"),
                    "version": headers.get("mcp-protocol-version"),
                    "accept": headers.get("accept"),
                }
            ),
            flush=True,
        )
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            await send({"type": "http.response.start", "status": 401, "headers": []})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        if self.sigv4:
            body = b""
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            query = scope.get("query_string", b"").decode()
            if not sigv4_valid(self.sigv4, scope["method"], headers.get("host", ""), scope["path"], query, headers, body):
                print("request refused: bad signature", flush=True)
                await send({"type": "http.response.start", "status": 403, "headers": []})
                await send({"type": "http.response.body", "body": b"forbidden"})
                return
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return {"type": "http.disconnect"}

            return await self.app(scope, replay, send)
        return await self.app(scope, receive, send)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stateless", action="store_true")
    parser.add_argument("--token")
    parser.add_argument("--sigv4")
    args = parser.parse_args()
    app = server.streamable_http_app(json_response=args.json, stateless_http=args.stateless)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sigv4 = tuple(args.sigv4.split(":", 1)) if args.sigv4 else None
    config = uvicorn.Config(Recorder(app, args.token, sigv4), log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    started = asyncio.ensure_future(web.serve(sockets=[sock]))
    while not web.started:
        if started.done():
            started.result()
            return
        await asyncio.sleep(0.01)
    print(f"listening on http://127.0.0.1:{port}/mcp", flush=True)
    await started


if __name__ == "__main__":
    asyncio.run(main())
