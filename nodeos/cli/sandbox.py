"""`nodeos sandbox` — being written (issue 5)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    subparsers.add_parser("sandbox", help="(not yet)")
