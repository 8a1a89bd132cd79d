"""The README's screenshot: the Dagster UI's global asset lineage with both demo sites, by headless Chromium.

    .venv/bin/python scripts/screenshot.py                      # runs the demo's setup, then shoots
    .venv/bin/python scripts/screenshot.py --url http://127.0.0.1:3000   # a UI that `make demo` already serves

Drives Debian's Chromium (`apt-get install chromium`) over the DevTools protocol: opens /asset-groups, waits for the
graph, expands every group (the UI's Alt+E), waits until both sites' asset nodes are in the page, and saves the PNG.
Fails with a message naming what did not render. Every process it starts is stopped (by PID) on exit.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo  # noqa: E402  (scripts/demo.py: the two sites, the UI process, stop_tree)

PAGE = "/asset-groups"  # "Global asset lineage": every group of the code location in one graph
# Each site's group must show these assets (the graph draws a group as a box around its asset nodes).
SITES = {"pi": "site 1 (environment connection)", "site_b": "site 2 (YAML connection site_b)"}
ASSETS = ("pi_points", "pi_timeseries", "af_elements", "event_frames")
# Display preferences of the throwaway browser profile (the UI keeps them in localStorage, JSON-encoded): no
# community pop-up, groups side by side (vertical flow), the narrow navigation bar.
PREFERENCES = {"communityNux": '"1"', "asset-graph-direction": '"vertical"', "dagster-nav-collapsed": "true"}
DEFAULT_OUT = ROOT / "docs" / "img" / "two-sites.png"
# {group: [asset names]} of the drawn graph: asset nodes by the group box that contains them (SVG coordinates), for
# the groups whose header is inside the window.
GRAPH_JS = """(() => {
  const box = fo => ["x", "y", "width", "height"].map(a => Number(fo.getAttribute(a)));
  const inside = (a, b) => a[0] >= b[0] && a[1] >= b[1] && a[0] + a[2] <= b[0] + b[2] && a[1] + a[3] <= b[1] + b[3];
  const groups = [], nodes = [];
  for (const fo of document.querySelectorAll("foreignObject")) {
    const header = fo.querySelector("[class*=groupNodeHeaderBox]");
    const name = fo.querySelector("[class*=assetName]");
    if (header) {
      const r = header.getBoundingClientRect();
      const seen = r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight;
      groups.push([header.textContent.trim(), box(fo), seen, [r.left, r.top, r.width].map(Math.round)]);
    }
    if (name) nodes.push([name.textContent.trim(), box(fo)]);
  }
  const out = {};
  for (const [group, b, seen, rect] of groups)
    out[group] = {seen, rect, assets: nodes.filter(([, n]) => inside(n, b)).map(([name]) => name).sort()};
  return out;
})()"""
# Asset nodes still loading their status (drawn with the neutral colours until the status query answers).
LOADING_JS = """document.querySelectorAll('[class*=minimalAssetNodeBox][style*="background-light"]').length"""


def wait_for(what: str, probe: Callable[[], bool], timeout: float) -> None:
    """Poll `probe` until true (a bounded wait for something another process renders), else fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshot: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.25)


def ui_is_up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class DevTools:
    """A minimal Chrome DevTools protocol session on one page."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def press_alt(self, code: str, key: str) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, modifiers=1, code=code, key=key)


@contextmanager
def chromium(binary: str, width: int, height: int) -> Iterator[DevTools]:
    """Headless Chromium with remote debugging on a free loopback port; one page's DevTools session."""
    with tempfile.TemporaryDirectory(prefix="osipi-chromium-") as profile:
        cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        cmd += [
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            "--remote-debugging-address=127.0.0.1",
        ]
        cmd += ["--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-first-run", "about:blank"]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            wait_for(
                "Chromium's DevTools port",
                lambda: port_file.exists() and bool(port_file.read_text().strip()),
                30,
            )
            port = port_file.read_text().split()[0]
            pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
            with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
                tools = DevTools(ws)
                tools.call("Page.enable")
                tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                           mobile=False)  # fmt: skip
                yield tools
        finally:
            demo.stop_tree(proc)


def html(tools: DevTools) -> str:
    return tools.evaluate("document.documentElement.outerHTML") or ""


def page_text(tools: DevTools) -> str:
    return tools.evaluate("document.body ? document.body.innerText : ''") or ""


def missing(graph: dict[str, Any]) -> list[str]:
    """What the drawn graph lacks: a site's group, its visibility in the window, or one of its assets."""
    out = []
    for group, label in SITES.items():
        drawn = graph.get(group)
        if drawn is None:
            out.append(f"group {group} of {label}")
            continue
        if not drawn["seen"]:
            out.append(f"group {group} inside the window")
        out += [f"{group}/{a}" for a in ASSETS if a not in drawn["assets"]]
    return out


def shoot(url: str, out: Path, binary: str, width: int, height: int, timeout: float) -> None:
    with chromium(binary, width, height) as tools:
        tools.call("Page.navigate", url=f"{url}/server_info")  # the UI's origin, for its localStorage
        wait_for("the UI's origin to load", lambda: "dagster_version" in page_text(tools), timeout)
        for key, value in PREFERENCES.items():
            tools.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(value)})")
        tools.call("Page.navigate", url=f"{url}{PAGE}")
        marks = {g: f">{g}<" for g in ("Global asset lineage", *SITES)}
        try:
            wait_for("the lineage page", lambda: all(m in html(tools) for m in marks.values()), timeout)
        except SystemExit:
            absent = [g for g, m in marks.items() if m not in html(tools)]
            raise SystemExit(
                f"screenshot: {url}{PAGE} shows no {', '.join(absent)} within {timeout:.0f} s "
                "(site_b exists where the UI runs with OSIPI_CONNECTIONS_DIR=scripts/demo_connections: make demo)"
            ) from None
        # Expand every group as the UI's Alt+E does; it records them in the URL (?expanded=...). Loading that URL
        # lays the expanded graph out afresh, zoomed to fit the window.
        tools.press_alt("KeyE", "e")
        wait_for(
            "the groups to expand (Alt+E)", lambda: "expanded=" in tools.evaluate("location.href"), timeout
        )
        tools.call("Page.navigate", url=tools.evaluate("location.href"))
        graph: dict[str, Any] = {}

        def complete() -> bool:
            graph.clear()
            graph.update(tools.evaluate(GRAPH_JS) or {})
            return not missing(graph)

        try:
            wait_for("both sites' assets", complete, timeout)
        except SystemExit:
            raise SystemExit(
                f"screenshot: the page at {url}{PAGE} did not render {', '.join(missing(graph))} "
                f"(drawn: {json.dumps({g: d['assets'] for g, d in graph.items()})}); is OSIPI_CONNECTIONS_DIR "
                "set where that UI runs?"
            ) from None
        wait_for("the assets' statuses to load", lambda: tools.evaluate(LOADING_JS) == 0, timeout)
        # The zoom-to-fit animates: capture once the group headers stay put for three polls in a row.
        positions: list[str] = []

        def settled() -> bool:
            positions.append(json.dumps({g: d["rect"] for g, d in (tools.evaluate(GRAPH_JS) or {}).items()}))
            return len(positions) >= 3 and len(set(positions[-3:])) == 1

        wait_for("the graph's zoom to settle", settled, timeout)
        png = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    sites = "; ".join(f"{g}: {', '.join(graph[g]['assets'])}" for g in SITES)
    print(f"[screenshot] wrote {shown} ({len(png) // 1024} KB) showing {sites}")


def with_demo(shot: Callable[[str], None], timeout: float) -> None:
    """The demo's setup (two emulators, their initial assets landed), the UI on a free port, the shot, all stopped."""
    demo.DEMO_DIR.mkdir(exist_ok=True)
    demo.prepare_dagster_home()
    os.environ.setdefault("OSIPI_LAKE_URI", str(ROOT / "data" / "lake"))
    with demo.two_sites():
        demo.materialize_initial_assets()
        port = demo.free_port()
        proc = demo.start_ui(dict(os.environ), port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"the Dagster UI at {url}", lambda: ui_is_up(url), timeout)
            shot(url)
        finally:
            demo.stop_tree(proc)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="a running Dagster UI (default: run the demo's setup and serve one)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="PNG to write (default: %(default)s)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="Chromium binary")
    parser.add_argument("--size", default="1600x600", help="window WIDTHxHEIGHT (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for each step")
    args = parser.parse_args()
    if shutil.which(args.chromium) is None:
        raise SystemExit(
            f"screenshot: {args.chromium!r} not found: apt-get install -y chromium (or --chromium PATH)"
        )
    width, height = (int(v) for v in args.size.lower().split("x"))

    def shot(url: str) -> None:
        shoot(url.rstrip("/"), args.out.resolve(), args.chromium, width, height, args.timeout)

    if args.url:
        if not ui_is_up(args.url.rstrip("/")):
            raise SystemExit(f"screenshot: no Dagster UI answers at {args.url}/server_info")
        shot(args.url)
        return 0
    with_demo(shot, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
