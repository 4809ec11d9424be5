"""mozaiks-toolhost: a MozaiksAI workflow folder's Python tools as an MCP server for
mozaiks-runtime (see the repository's README, "Python tools: the tool host")."""

from .folder import Folder, Tool, ToolLoadError, load_folder

__all__ = ["Folder", "Tool", "ToolLoadError", "load_folder", "load_all"]


def load_all(paths):
    """The folders at `paths`: each a MozaiksAI folder (it holds orchestrator.yaml) or a
    directory of them."""
    from pathlib import Path

    folders = []
    for path in map(Path, paths):
        if (path / "orchestrator.yaml").is_file():
            folders.append(load_folder(path))
            continue
        for child in sorted(p for p in path.iterdir() if (p / "orchestrator.yaml").is_file()):
            folders.append(load_folder(child))
    names = [f.name for f in folders]
    for name in names:
        if names.count(name) > 1:
            raise ToolLoadError(f"two folders are named {name}; the host serves each at /{name}/mcp")
    return folders
