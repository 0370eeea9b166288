"""A small, deliberately ordinary Flask "shop" used to demonstrate obsdash.

The package holds the app itself (``app``), a local stand-in for the third-party API it calls
(``standin``), a traffic generator (``traffic``) and a one-command demo that wires them together
under ``obsdash wrap`` (``demo``). Nothing here imports OpenTelemetry: all telemetry is injected.
"""
