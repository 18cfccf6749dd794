"""``python -m localnet``: the same node and flags as ``xorj localnet``."""

from localnet.cli import main

raise SystemExit(main())
