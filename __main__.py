"""Allow ``python -m eventfold``."""

from eventfold.cli import main

raise SystemExit(main())
