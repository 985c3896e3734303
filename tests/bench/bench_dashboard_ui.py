"""The dashboard end to end, in a real terminal: 5,000 pods, then key presses under 100 pod changes per second.

    .venv/bin/python tests/bench/bench_dashboard_ui.py [--pods 5000] [--nodes 50] [--rate 100] [--seconds 10]

The cluster is bench_dashboard's ``prepare()``: a master daemon, ``--nodes``
simulated nodes, ``--pods`` Running pods. The dashboard is the real one —
``DashboardApp`` with the real ``Feed`` — run in tmux at 160x48, as an
operator runs ``nodeos dashboard`` over SSH; this process types with
``tmux send-keys`` and reads the screen with ``tmux capture-pane -p -e``,
polling until what it waits for is painted. Every figure is therefore what a
person waits for, tmux's own relaying included (the terminal emulator's is
not).

The dashboard runs through this file (``--role dashboard``) only to learn
when its data arrived: its Store notes the wall-clock time the feed declares
every informer synced. Otherwise it is ``nodeos dashboard --server URL``.

Figures:

- **first screen**: data arrived (all kinds listed) -> the screen shows pod
  rows and "N rows"; also process start -> that screen;
- **keys under load**: a separate process patches ``--rate`` pods per second
  (labels, as bench_dashboard; ``--patch status`` bumps a container's
  restart count instead, which changes a visible cell) for ``--seconds``;
  meanwhile a key goes every ~200 ms, cycling down, up, page down, ``/``,
  a character, ``esc``, ``o``; each is timed from ``send-keys`` to its
  effect on screen (cursor on another row, prompt open, filter in the
  header, prompt closed, sort column changed). p50/p99/max overall and per
  key. ``esc`` includes the escape delay (the dashboard's 25 ms, or
  ESCDELAY if set in this environment): a terminal cannot tell a lone Esc
  from the start of an escape sequence sooner.
- **the dashboard's own figures**, written when it quits: how long its UI
  ticks (the store's changes applied) took while the load ran, and its
  garbage collections' pauses per generation.

Prints a table, then one JSON line of the figures. Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from tests.bench.bench_dashboard import NAMESPACE, load, prepare  # noqa: E402
from tests.bench.bench_scheduler import percentile  # noqa: E402

WIDTH, HEIGHT = 160, 48
KEY_INTERVAL = 0.2
KEY_TIMEOUT = 5.0
FIRST_SCREEN_TIMEOUT = 120.0
SGR = re.compile(r"\x1b\[[0-9;:]*m")


# -- the dashboard, in this file only to time its data's arrival ----------------------------------------

def run_dashboard(server: str, arrived_file: Path, profile: Path | None = None) -> None:
    """``nodeos dashboard --server`` as cli/dashboard.py runs it, noting when every informer has synced."""
    from nodeos.client import load_connection
    from nodeos.tui.app import DashboardApp
    from nodeos.tui.data.feed import Feed
    from nodeos.tui.data.store import Store

    class TimedStore(Store):
        def set_connected(self, connected: bool, error: str = "") -> None:
            if connected and not arrived_file.exists():
                arrived_file.write_text(json.dumps({"time": time.time(), "pods": self.count("Pod")}))
            super().set_connected(connected, error)

    conn = load_connection(None, server=server)
    store = TimedStore()
    feed = Feed(conn, store).start()
    app = DashboardApp(feed, store, server=conn.server)
    pauses = _gc_pauses()
    try:
        if profile is None:
            app.run()
        else:  # cProfile of the UI thread (the feed's thread is not in it): where a key's time goes
            import cProfile
            cProfile.runctx("app.run()", globals(), {"app": app}, str(profile))
    finally:
        feed.stop()
        ticks = [(wall, round(seconds * 1e3, 2)) for wall, seconds in app.ticks]
        arrived_file.with_name("gc.json").write_text(json.dumps({**pauses, "tick": ticks}))


def _gc_pauses() -> dict[str, list[float]]:
    """Milliseconds of each garbage collection, per generation: a full one stops every thread."""
    import gc
    pauses: dict[str, list[float]] = {"0": [], "1": [], "2": []}
    started = [0.0]

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[str(info["generation"])].append(round((time.perf_counter() - started[0]) * 1e3, 2))
    gc.callbacks.append(note)
    return pauses


# -- the terminal ---------------------------------------------------------------------------------------

class Tmux:
    """One detached tmux session running ``command`` at ``WIDTH`` x ``HEIGHT``."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.name = f"nodeos-bench-{uuid.uuid4().hex[:8]}"
        exports = " ".join(f"{k}={v}" for k, v in env.items())
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(WIDTH), "-y", str(HEIGHT),
                        "-c", str(ROOT), f"env {exports} " + " ".join(command)], check=True)

    def capture(self) -> str:
        """The screen with its SGR escapes (``-e``): the cursor row is told by its colours."""
        return subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", self.name], check=True,
                              capture_output=True, text=True).stdout

    def send(self, key: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, key], check=True)

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@dataclass(frozen=True)
class Screen:
    """What the benchmark reads off a capture: header, prompt, and the row under the cursor."""

    lines: list[str]  # plain text
    cursor: str  # the plain text of the cursor row ("" if none is told apart)

    @classmethod
    def parse(cls, raw: str) -> Screen:
        styled = raw.splitlines()
        plain = [SGR.sub("", line) for line in styled]
        return cls(plain, _cursor_line(styled, plain))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def place(self) -> str:
        """The header's second line: view, namespace, filter, sort, rows."""
        return next((line for line in self.lines if " rows │" in line), "")

    @property
    def prompt_open(self) -> bool:
        """The bottom line is the prompt (``/`` or ``:`` and what is typed), not the key hints (``? Help ...``)."""
        bottom = next((line.strip() for line in reversed(self.lines) if line.strip()), "")
        return bottom.startswith(("/", ":"))

    def rows_shown(self, pods: int) -> bool:
        return f"{pods} rows" in self.place and sum(f"{NAMESPACE} " in line for line in self.lines) > HEIGHT // 2


def _cursor_line(styled: list[str], plain: list[str]) -> str:
    """The table row whose background no other row shares: the table paints the cursor row in its own colours.

    tmux writes an SGR only where the style changes, so a line's background may be set lines above it;
    the background is followed across the whole capture.
    """
    background = ""
    rows: list[tuple[str, str]] = []
    for line, text in zip(styled, plain, strict=True):
        lead = re.match(r"(?:\x1b\[[0-9;:]*m)*", line)
        background = _background(lead.group(0) if lead else "", background)
        if f" {NAMESPACE} " in f" {text}":
            rows.append((background, text))
        background = _background(line, background)
    counts: dict[str, int] = {}
    for colour, _ in rows:
        counts[colour] = counts.get(colour, 0) + 1
    unique = [text for colour, text in rows if counts[colour] == 1]
    return unique[0].strip() if len(unique) == 1 else ""


def _background(sgrs: str, background: str) -> str:
    """The background after the SGR sequences in ``sgrs``, starting from ``background``."""
    for params in re.findall(r"\x1b\[([0-9;:]*)m", sgrs):
        codes = params.split(";") if params else ["0"]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in ("0", "", "49"):
                background = ""
            elif code == "48" and i + 1 < len(codes):
                size = 3 if codes[i + 1] == "5" else 5
                background = ";".join(codes[i:i + size])
                i += size - 1
            elif code == "38" and i + 1 < len(codes):
                i += (3 if codes[i + 1] == "5" else 5) - 1
            elif (code.isdigit() and 40 <= int(code) <= 47) or (code.isdigit() and 100 <= int(code) <= 107):
                background = code
            i += 1
    return background


def wait_until(tmux: Tmux, done: Callable[[Screen], bool], timeout: float) -> tuple[float, Screen]:
    """Poll the screen until ``done``; return the time it was first seen (perf_counter) and the screen."""
    deadline = time.perf_counter() + timeout
    while True:
        seen = time.perf_counter()
        screen = Screen.parse(tmux.capture())
        if done(screen):
            return seen, screen
        if seen > deadline:
            time.sleep(1.0)  # and a second look: a screen that stays wrong, or one caught mid-frame?
            raise TimeoutError(f"{screen.text}\n--- one second later ---\n{Screen.parse(tmux.capture()).text}")


# -- the keys ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Key:
    """A key to send and how to tell, from the screen before it, that its effect is on screen."""

    label: str
    tmux: str
    effect: Callable[[Screen, Screen], bool]  # (before, now) -> painted?


def _moved(before: Screen, now: Screen) -> bool:
    return bool(now.cursor) and now.cursor.split()[:2] != before.cursor.split()[:2]


FILTER_CHAR = "7"
KEYS = (
    Key("down", "Down", _moved),
    Key("up", "Up", _moved),
    Key("page down", "NPage", _moved),
    Key("/", "/", lambda before, now: now.prompt_open),
    Key(f"/ then {FILTER_CHAR}", FILTER_CHAR, lambda before, now: f"filter: {FILTER_CHAR}" in now.place),
    Key("esc", "Escape", lambda before, now: "filter:" not in now.place and not now.prompt_open),
    Key("o (sort)", "o", lambda before, now: _sort(now) != _sort(before) and bool(_sort(now))),
)


def _sort(screen: Screen) -> str:
    match = re.search(r"sort: (\S+)", screen.place)
    return match.group(1) if match else ""


def press_keys(tmux: Tmux, load: subprocess.Popen[str]) -> dict[str, list[float]]:
    """Send the KEYS in turn every ~KEY_INTERVAL while the load runs; seconds from send to effect, per key."""
    latencies: dict[str, list[float]] = {key.label: [] for key in KEYS}
    index = 0
    while load.poll() is None:
        key = KEYS[index % len(KEYS)]
        index += 1
        before = Screen.parse(tmux.capture())
        sent = time.perf_counter()
        tmux.send(key.tmux)
        seen, _ = wait_until(tmux, lambda now, key=key, before=before: key.effect(before, now), KEY_TIMEOUT)
        latencies[key.label].append(seen - sent)
        time.sleep(max(0.0, KEY_INTERVAL - (time.perf_counter() - sent)))
    return latencies


# -- the load ------------------------------------------------------------------------------------------

# -- the measurement -----------------------------------------------------------------------------------

def measure(url: str, pods: int, rate: float, seconds: float, patch: str, workdir: Path,
            profile: Path | None = None) -> dict[str, Any]:
    arrived_file = workdir / "arrived.json"
    started_wall, started = time.time(), time.perf_counter()
    command = [sys.executable, __file__, "--role", "dashboard", "--server", url, "--arrived", str(arrived_file)]
    if profile is not None:
        command += ["--profile", str(profile.resolve())]
    tmux = Tmux(command,
                {"TERM": "xterm-256color", "COLORTERM": "", "PYTHONUNBUFFERED": "1"})
    try:
        seen, _ = wait_until(tmux, lambda s: s.rows_shown(pods), FIRST_SCREEN_TIMEOUT)
        seen_wall = started_wall + (seen - started)
        arrived = json.loads(arrived_file.read_text())
        figures: dict[str, Any] = {
            "pods": pods, "listed_pods": arrived["pods"],
            "start_to_data_seconds": round(arrived["time"] - started_wall, 3),
            "first_screen_ms": round((seen_wall - arrived["time"]) * 1e3, 1),
            "start_to_screen_seconds": round(seen - started, 3)}
        tmux.send("Down")  # off the first row, so "up" has somewhere to go
        time.sleep(0.5)
        load_started = time.time()
        load = subprocess.Popen([sys.executable, __file__, "--role", "load", "--server", url, "--pods", str(pods),
                                 "--rate", str(rate), "--seconds", str(seconds), "--patch", patch],
                                stdout=subprocess.PIPE, text=True)
        latencies = press_keys(tmux, load)
        patches = json.loads((load.stdout.read() if load.stdout else "") or "{}").get("patches", 0)
        _quit(tmux, workdir / "gc.json")
    finally:
        tmux.kill()
    gc_file = workdir / "gc.json"
    if gc_file.exists():
        pauses = json.loads(gc_file.read_text())
        ticks = [ms for wall, ms in pauses.pop("tick") if wall >= load_started]  # not the first list's
        figures["tick_ms"] = _stats("ms", ticks) | {"count": len(ticks)}
        figures["gc_ms"] = {gen: _stats("ms", ms) | {"count": len(ms)} for gen, ms in pauses.items() if ms}
    every = [s * 1e3 for values in latencies.values() for s in values]
    figures.update(patch=patch, patches=patches, keys=len(every), **_stats("key_ms", every))
    figures["per_key"] = {label: _stats("ms", [s * 1e3 for s in values]) for label, values in latencies.items()}
    return figures


def _quit(tmux: Tmux, written: Path) -> None:
    """Quit the dashboard with its keys (killing tmux would lose its profile) and wait for ``written``."""
    tmux.send("Escape")
    time.sleep(0.5)
    tmux.send("q")
    deadline = time.monotonic() + 30
    while not written.exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _stats(prefix: str, ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}
    return {f"{prefix}_p50": round(percentile(ms, 0.5), 1), f"{prefix}_p99": round(percentile(ms, 0.99), 1),
            f"{prefix}_max": round(max(ms), 1)}


def report(figures: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [
        ("pods / simulated nodes", f"{args.pods} / {args.nodes}"),
        ("dashboard start -> data arrived (all listed)", f"{figures['start_to_data_seconds']} s"),
        ("data arrived -> first full screen (tmux)", f"{figures['first_screen_ms']} ms"),
        ("dashboard start -> first full screen", f"{figures['start_to_screen_seconds']} s"),
        (f"load: pod {args.patch} patches ({args.rate:g}/s for {args.seconds:g} s)", str(figures["patches"])),
        ("keys pressed", str(figures["keys"])),
        ("key -> effect painted p50 / p99 / max",
         f"{figures.get('key_ms_p50')} / {figures.get('key_ms_p99')} / {figures.get('key_ms_max')} ms"),
    ]
    tick = figures.get("tick_ms") or {}
    if tick.get("count"):
        rows.append((f"UI tick under the load, {tick['count']} ticks, p50 / p99 / max",
                     f"{tick['ms_p50']} / {tick['ms_p99']} / {tick['ms_max']} ms"))
    for generation, stats in (figures.get("gc_ms") or {}).items():
        rows.append((f"gc generation {generation}: {stats['count']} collections, p50 / p99 / max",
                     f"{stats['ms_p50']} / {stats['ms_p99']} / {stats['ms_max']} ms"))
    for label, stats in figures["per_key"].items():
        if stats:
            rows.append((f"  {label}", f"{stats['ms_p50']} / {stats['ms_p99']} / {stats['ms_max']} ms"))
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--patch", choices=["labels", "status"], default="labels")
    parser.add_argument("--server", help="an existing cluster's API with --pods pods in namespace 'bench'")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the dashboard's UI thread here")
    parser.add_argument("--role", choices=["load", "dashboard"], help=argparse.SUPPRESS)
    parser.add_argument("--arrived", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "load":
        trio.run(load, args.server, args.pods, args.rate, args.seconds, args.patch)
        return
    if args.role == "dashboard":
        run_dashboard(args.server, args.arrived, args.profile)
        return
    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-ui-"))
    setup = time.perf_counter()
    url, cleanup = (args.server, lambda: None) if args.server else prepare(args.pods, args.nodes, workdir)
    try:
        figures = {"setup_seconds": round(time.perf_counter() - setup, 1),
                   **measure(url, args.pods, args.rate, args.seconds, args.patch, workdir, args.profile)}
    finally:
        cleanup()
    report(figures, args)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
