"""`obsdash mcp`: an MCP server that lets an AI coding assistant read the telemetry (see server.py).

Only server.py imports the `mcp` SDK (the optional extra `obsdash[mcp]`); the tool answers (tools.py, traces.py,
runs.py, text.py) are plain functions over the store's typed queries.
"""
