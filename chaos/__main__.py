"""`python -m chaos proxy ...`: the same as `xorj chaos proxy ...`."""

from chaos.cli import main

raise SystemExit(main())
