"""Stand-in for MozaiksAI's `logs.logging_config`: standard `logging` loggers."""

import logging


def get_workflow_logger(workflow_name: str = "", chat_id: str | None = None, **_: object) -> logging.Logger:
    return logging.getLogger(f"mozaiks_toolhost.workflow.{workflow_name or 'tools'}")


def get_core_logger(name: str = "core", **_: object) -> logging.Logger:
    return logging.getLogger(f"mozaiks_toolhost.{name}")


def setup_logging(*_: object, **__: object) -> None:
    return None
