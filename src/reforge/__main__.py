"""`python -m reforge` runs the same command as the `reforge` entry point."""

from reforge.cli import main

raise SystemExit(main())
