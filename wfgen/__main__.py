"""`python -m wfgen` is the same as the `wfgen` console script."""

from wfgen.cli import main

raise SystemExit(main())
