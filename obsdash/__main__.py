"""`python -m obsdash` runs the CLI."""

from obsdash.cli import main

raise SystemExit(main())
