"""The ``nodeos`` command line: ``nodeos.cli.main:main``."""
