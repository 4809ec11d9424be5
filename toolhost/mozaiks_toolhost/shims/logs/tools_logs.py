"""Stand-in for MozaiksAI's `logs.tools_logs`."""

import logging


def get_tool_logger(tool_name: str = "tool", **_: object) -> logging.Logger:
    return logging.getLogger(f"mozaiks_toolhost.tool.{tool_name}")


def log_tool_event(logger: logging.Logger, action: str = "", status: str = "", **fields: object) -> None:
    logger.debug("tool %s %s %s", action, status, fields)
