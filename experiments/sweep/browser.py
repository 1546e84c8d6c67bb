"""Open an HTML file in headless Chromium over the DevTools protocol.

Used by the dashboard test (console errors, network requests, rendered
traces) and to take the README screenshot. It needs Debian's ``chromium``
(``apt-get install -y chromium``) and talks to it with the WebSocket client
of tornado (already installed as a dependency of dask.distributed), so no
browser-driver package is needed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.errors import EinsimError

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--remote-debugging-port=0",
)

#: JavaScript run in the page: for every Plotly graph div, its trace count and
#: how many rendered trace elements (SVG groups or WebGL canvases) it has.
PLOT_PROBE = r"""
(() => {
  const out = [];
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const svgTraces = gd.querySelectorAll(
      'g.trace, g.barlayer g.point, path.point, g.parcoords, g.parcats, g.pielayer g.slice').length;
    const gl = gd.querySelectorAll('canvas').length;
    out.push({id: gd.id, traces: (gd._fullData || []).length,
              data: (gd.data || []).length, svgTraces: svgTraces, canvases: gl,
              title: (gd.layout && gd.layout.title && gd.layout.title.text) || ''});
  }
  return JSON.stringify({plotly: typeof window.Plotly !== 'undefined', plots: out});
})()
"""


class BrowserError(EinsimError):
    """Chromium is missing or the page could not be loaded."""


@dataclass
class PageReport:
    console_errors: list[str] = field(default_factory=list)
    #: every request the page made that is not file:, data: or blob:
    network_requests: list[str] = field(default_factory=list)
    plots: list[dict[str, Any]] = field(default_factory=list)
    plotly_loaded: bool = False
    screenshot_png: bytes | None = None


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


async def _session(
    ws_url: str, html: Path, settle_s: float, screenshot: bool, width: int, height: int
) -> PageReport:
    from tornado.websocket import websocket_connect

    conn = await websocket_connect(ws_url, max_message_size=256 * 1024 * 1024)
    report = PageReport()
    next_id = 0
    waiting: dict[int, asyncio.Future] = {}
    loaded = asyncio.Event()
    session_id: str | None = None

    async def reader() -> None:
        while True:
            msg = await conn.read_message()
            if msg is None:
                return
            m = json.loads(msg)
            if "id" in m and m["id"] in waiting:
                waiting.pop(m["id"]).set_result(m)
                continue
            method, params = m.get("method"), m.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                report.console_errors.append(
                    " ".join(
                        str(a.get("value", a.get("description", "")))
                        for a in params.get("args", [])
                    )
                )
            elif method == "Runtime.exceptionThrown":
                d = params.get("exceptionDetails", {})
                report.console_errors.append(
                    d.get("exception", {}).get("description") or d.get("text", "exception")
                )
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                e = params["entry"]
                report.console_errors.append(
                    f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip()
                )
            elif method == "Network.requestWillBeSent":
                url = params.get("request", {}).get("url", "")
                if not re.match(r"^(file|data|blob|about):", url):
                    report.network_requests.append(url)
            elif method == "Page.loadEventFired":
                loaded.set()

    task = asyncio.ensure_future(reader())

    async def call(
        method: str, params: dict[str, Any] | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        nonlocal next_id
        next_id += 1
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        waiting[next_id] = fut
        msg: dict[str, Any] = {"id": next_id, "method": method, "params": params or {}}
        if session_id and not method.startswith("Target."):
            msg["sessionId"] = session_id
        await conn.write_message(json.dumps(msg))
        res = await asyncio.wait_for(fut, timeout)
        if "error" in res:
            raise BrowserError(f"DevTools {method} failed: {res['error'].get('message')}")
        return res.get("result", {})

    try:
        target = await call("Target.createTarget", {"url": "about:blank"})
        att = await call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        session_id = att["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            await call(f"{domain}.enable")
        await call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        await call("Page.navigate", {"url": html.resolve().as_uri()})
        await asyncio.wait_for(loaded.wait(), 120)
        # let Plotly finish drawing (it renders synchronously on load, but
        # resize handlers and WebGL traces may need a few frames)
        await asyncio.sleep(settle_s)
        res = await call("Runtime.evaluate", {"expression": PLOT_PROBE, "returnByValue": True})
        probe = json.loads(res["result"]["value"])
        report.plotly_loaded = probe["plotly"]
        report.plots = probe["plots"]
        if screenshot:
            shot = await call(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False}
            )
            report.screenshot_png = base64.b64decode(shot["data"])
    finally:
        task.cancel()
        conn.close()
    return report


def inspect_page(
    html: str | Path,
    *,
    settle_s: float = 2.0,
    screenshot: bool = False,
    width: int = 1400,
    height: int = 1800,
    timeout_s: float = 180,
) -> PageReport:
    """Load ``html`` in a fresh headless Chromium and report what happened."""
    exe = find_chromium()
    if exe is None:
        raise BrowserError(
            "headless Chromium not found; install it with `apt-get install -y chromium`"
        )
    html = Path(html)
    # ignore_cleanup_errors: a last resort only; _stop_group() already waited
    # for every Chromium process to exit before the profile is removed
    with tempfile.TemporaryDirectory(
        prefix="einsim-chromium-", ignore_cleanup_errors=True
    ) as profile:
        proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOME": profile},
            # its own process group, so that the renderer, GPU and zygote
            # children can be killed with it (they write to the profile)
            start_new_session=True,
        )
        try:
            ws_url = None
            deadline = time.monotonic() + 60
            assert proc.stderr is not None
            while time.monotonic() < deadline:
                line = proc.stderr.readline()
                if not line:
                    if proc.poll() is not None:
                        break
                    continue
                m = re.search(r"DevTools listening on (ws://\S+)", line)
                if m:
                    ws_url = m.group(1)
                    break
            if ws_url is None:
                raise BrowserError(f"Chromium did not start (exit status {proc.poll()})")
            return asyncio.run(
                asyncio.wait_for(
                    _session(ws_url, html, settle_s, screenshot, width, height), timeout_s
                )
            )
        finally:
            _stop_group(proc)


def _stop_group(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Kill Chromium's whole process group and wait until none of it is left.

    Killing only the browser process leaves its children writing into the
    profile directory, and removing that directory then fails with
    "Directory not empty" (the flaky test of issue 14).
    """
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # any member of the group still alive?
        except ProcessLookupError:
            return
        except PermissionError:  # pragma: no cover - not ours any more
            return
        time.sleep(0.05)
