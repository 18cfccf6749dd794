"""`python -m contracts build [--out DIR] [--force]`: the contracts CLI before `xorj` wires it."""

from contracts.cli import main

raise SystemExit(main())
