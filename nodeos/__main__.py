"""``python -m nodeos`` is the ``nodeos`` command."""

from nodeos.cli.main import main

raise SystemExit(main())
