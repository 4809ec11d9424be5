"""The tool host on a real folder (tests/fixtures/toolhost_workflows/Order_Desk of the
repository), started as `python -m mozaiks_toolhost` on 127.0.0.1 and spoken to over MCP's
streamable HTTP (JSON-RPC POSTs, as the runtime sends them)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ROOT / "tests/fixtures/toolhost_workflows"
HOST = Path(__file__).resolve().parents[1]


def start(*dirs):
    env = dict(os.environ, PYTHONPATH=str(HOST))
    process = subprocess.Popen(
        [sys.executable, "-m", "mozaiks_toolhost", *map(str, dirs)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in process.stdout:
        if line.startswith("listening on "):
            return process, line.split()[-1]
    process.wait(timeout=30)
    raise AssertionError(f"the host did not start: {process.stderr.read()}")


class Client:
    def __init__(self, url):
        self.url = url
        self.next = 0

    def rpc(self, method, params=None):
        self.next += 1
        body = {"jsonrpc": "2.0", "id": self.next, "method": method}
        if params is not None:
            body["params"] = params
        answer = httpx.post(
            self.url,
            json=body,
            headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"},
            timeout=30,
        )
        answer.raise_for_status()
        return answer.json()


class ToolHost(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.process, base = start(FOLDERS)
        cls.client = Client(f"{base}/Order_Desk/mcp")
        init = cls.client.rpc(
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        )
        cls.server_info = init["result"]["serverInfo"]

    @classmethod
    def tearDownClass(cls):
        cls.process.kill()
        cls.process.wait()
        cls.process.stdout.close()
        cls.process.stderr.close()

    def call(self, name, arguments, meta=None):
        params = {"name": name, "arguments": arguments}
        if meta is not None:
            params["_meta"] = meta
        return self.client.rpc("tools/call", params)["result"]

    def test_lists_the_python_tools_without_context_variables(self):
        tools = {t["name"]: t for t in self.client.rpc("tools/list")["result"]["tools"]}
        self.assertEqual(sorted(tools), ["approve_refund", "lookup_order", "route_to_refunds"])
        schema = tools["lookup_order"]["inputSchema"]
        self.assertEqual(schema["required"], ["order_id"])
        self.assertNotIn("context_variables", schema["properties"])
        self.assertEqual(schema["properties"]["order_id"]["description"], "The order number, such as A-1.")
        self.assertEqual(tools["lookup_order"]["description"], "Finds an order by its number.")
        self.assertEqual(self.server_info["name"], "mozaiks-toolhost/Order_Desk")

    def test_a_tool_reads_and_updates_the_context(self):
        result = self.call("lookup_order", {"order_id": "A-1"}, {"mozaiks.ai/context_variables": {"order_id": None, "kept": 1}})
        self.assertFalse(result["isError"])
        self.assertEqual(result["structuredContent"], {"order_id": "A-1", "total": 40, "status": "delivered"})
        self.assertEqual(result["_meta"]["mozaiks.ai/context_variables"], {"order_id": "A-1", "order_total": 40})

    def test_a_failing_tool_is_an_error_result(self):
        result = self.call("lookup_order", {"order_id": "Z-9"}, {"mozaiks.ai/context_variables": {}})
        self.assertTrue(result["isError"])
        self.assertIn("there is no order Z-9", result["content"][0]["text"])
        bad = self.call("lookup_order", {"order": 1})
        self.assertTrue(bad["isError"])
        self.assertIn("do not match its parameters", bad["content"][0]["text"])

    def test_a_reply_result_with_a_target_is_a_handoff(self):
        result = self.call("route_to_refunds", {"reason": "broken"})
        self.assertEqual(result["content"][0]["text"], "Routing to the refund desk: broken")
        self.assertEqual(result["_meta"]["mozaiks.ai/handoff"], "RefundAgent")
        self.assertEqual(result["_meta"]["mozaiks.ai/context_variables"], {"refund_reason": "broken"})

    def test_use_ui_tool_asks_then_replays_with_the_answer(self):
        context = {"mozaiks.ai/context_variables": {"order_id": "A-1"}}
        asked = self.call("approve_refund", {"amount": 40}, context)
        self.assertEqual(
            asked["_meta"]["mozaiks.ai/input_request"],
            {"component": "RefundConfirm", "mode": "inline", "payload": {"order_id": "A-1", "amount": 40}},
        )
        self.assertNotIn("mozaiks.ai/context_variables", asked["_meta"])
        answered = self.call(
            "approve_refund",
            {"amount": 40},
            dict(context, **{"mozaiks.ai/ui_responses": [{"approved": True}]}),
        )
        self.assertEqual(answered["structuredContent"], {"approved": True, "amount": 40})
        self.assertEqual(answered["_meta"]["mozaiks.ai/context_variables"], {"refund_approved": True})
        self.assertNotIn("mozaiks.ai/input_request", answered["_meta"])

    def test_an_unknown_folder_is_404(self):
        base = self.client.url.rsplit("/", 2)[0]
        self.assertEqual(httpx.post(f"{base}/Nope/mcp", json={}).status_code, 404)


class Loading(unittest.TestCase):
    def test_a_tool_importing_what_the_host_lacks_stops_the_start_naming_it(self):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "Broken"
            shutil.copytree(FOLDERS / "Order_Desk", folder)
            (folder / "tools" / "lookup_order.py").write_text(
                "from mozaiksai.core.data.persistence.persistence_manager import AG2PersistenceManager\n"
                "def lookup_order(order_id: str): return order_id\n"
            )
            env = dict(os.environ, PYTHONPATH=str(HOST))
            run = subprocess.run(
                [sys.executable, "-m", "mozaiks_toolhost", str(folder)],
                capture_output=True, text=True, env=env, timeout=60,
            )
            self.assertEqual(run.returncode, 2, run.stderr)
            self.assertIn("tool lookup_order", run.stderr)
            self.assertIn("imports `mozaiksai.core.data", run.stderr)


if __name__ == "__main__":
    unittest.main()
