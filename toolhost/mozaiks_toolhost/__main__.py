"""`python -m mozaiks_toolhost [--host H] [--port P] DIR...`: serves the Python tools of the
MozaiksAI folders under each DIR at `http://H:P/<Folder>/mcp`. Prints `listening on
http://H:P` once it accepts connections; a tool that cannot be loaded stops the start with the
reason (exit status 2)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mozaiks-toolhost", description=__doc__)
    parser.add_argument("dirs", nargs="+", help="MozaiksAI folders, or directories of them")
    parser.add_argument("--host", default=os.environ.get("MOZAIKS_TOOLHOST_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "0")))
    args = parser.parse_args(argv)

    from . import ToolLoadError, load_all

    try:
        folders = load_all(args.dirs)
    except ToolLoadError as e:
        print(f"mozaiks-toolhost: {e}", file=sys.stderr)
        return 2
    from .server import Host

    app = Host(folders, host=args.host)
    for folder in folders:
        print(f"serving {folder.name}: {', '.join(folder.tools) or 'no Python tools'}", flush=True)
    return asyncio.run(_serve(app, args.host, args.port))


async def _serve(app, host: str, port: int) -> int:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if serving.done():
        serving.result()
        return 1
    bound = sock.getsockname()
    print(f"listening on http://{bound[0]}:{bound[1]}", flush=True)
    await serving
    return 0


if __name__ == "__main__":
    sys.exit(main())
