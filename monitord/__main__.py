"""`python -m monitord` is the same as the `monitord` command."""

from monitord.cli import main

raise SystemExit(main())
