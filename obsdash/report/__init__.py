"""`obsdash report`: production-readiness findings computed from the stored telemetry.

findings.py turns the evidence of obsdash/store/queries/findings.py into findings with a severity; render.py
prints them as text, Markdown or JSON; command.py is the CLI entry. The dashboard's Findings screen shows the
same list.
"""
