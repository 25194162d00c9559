"""Headless Chromium for the tests that look at a page: the compare report (a file) and the
deployed stack's UIs (a login to fill in). One place for starting the browser, driving it and
making sure none of its processes outlives a test, and for reading back its screenshots.

The browser is driven over the DevTools protocol on `--remote-debugging-pipe` (it reads
commands on fd 3 and answers on fd 4, JSON messages ended by a NUL byte), so no WebSocket
client is needed: the test environment has none, and the standard library is enough.
"""

import base64
import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
SIZE = (1280, 800)
# Root needs --no-sandbox; the rest keep a throwaway profile quiet (no first-run pages).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--no-default-browser-check", f"--window-size={SIZE[0]},{SIZE[1]}"]  # fmt: skip


class BrowserError(AssertionError):
    """What the page did not do in time, or a DevTools command the browser refused."""


class Browser:
    """One headless Chromium with its profile (and $HOME) in `folder`, one page in it.

    Use it as a context manager: on the way out the browser and every helper it forked are
    killed, and a survivor fails the test (a browser left behind holds the stack's pages).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        commands, self._to_browser = _pipe_at_least(10)
        self._from_browser, answers = _pipe_at_least(10)

        def on_fds_3_and_4() -> None:  # in the child, before exec: where Chromium looks
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        log = (folder / "chromium.log").open("wb")
        self.process = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={folder / 'profile'}",
             "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=False,
            preexec_fn=on_fds_3_and_4, start_new_session=True,
            env={**os.environ, "HOME": str(folder)},
        )  # fmt: skip
        log.close()
        os.close(commands)
        os.close(answers)
        self._buffer, self._next_id, self._session = b"", 0, None
        page = next(
            t for t in self._call("Target.getTargets")["targetInfos"] if t["type"] == "page"
        )
        self._session = self._call("Target.attachToTarget", targetId=page["targetId"],
                                   flatten=True)["sessionId"]  # fmt: skip
        # The page's own size, whatever the window's frame takes: screenshots are SIZE.
        self._call("Emulation.setDeviceMetricsOverride", width=SIZE[0], height=SIZE[1],
                   deviceScaleFactor=1, mobile=False)  # fmt: skip

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *_: object) -> None:
        with contextlib.suppress(OSError, BrowserError):
            self._call("Browser.close", session=False)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        stop(self.process, self.folder)

    # --- the protocol ---------------------------------------------------------------------

    def _call(self, method: str, session: bool = True, timeout: float = 60, **params) -> dict:
        """Send one command and return its result, skipping the events sent meanwhile."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session and self._session:
            message["sessionId"] = self._session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                    raise BrowserError(f"{method}: no answer within {timeout:.0f} s")
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError(f"{method}: the browser exited; see {self.folder}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self._call("Runtime.evaluate", expression=expression, returnByValue=True,
                            awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    # --- what a user does -------------------------------------------------------------------

    def open(self, url: str) -> str | None:
        """Go to `url`; None, or why the browser could not load it (its net::ERR_ name)."""
        return self._call("Page.navigate", url=url).get("errorText")

    def text(self) -> str:
        """What the page shows: its body's rendered text (no markup, no hidden scripts)."""
        return str(self.evaluate("document.body ? document.body.innerText : ''") or "")

    def _between_pages(self, expression: str) -> object:
        """evaluate, or None while the page is being replaced (a login form's submit, a
        redirect): the protocol then refuses to look into the page that is going away."""
        try:
            return self.evaluate(expression)
        except BrowserError as error:
            if "navigated or closed" in str(error) or "context" in str(error):
                return None
            raise

    def wait_for_text(self, *words: str, timeout: float = 90) -> str:
        """Poll the page until it shows every one of `words`; its text then. A UI renders in
        steps (scripts, then API calls), so there is no single moment to wait for."""
        deadline = time.monotonic() + timeout
        probe = "document.body ? document.body.innerText : ''"
        while True:
            shown = str(self._between_pages(probe) or "")
            if all(word in shown for word in words):
                return shown
            if time.monotonic() > deadline:
                raise BrowserError(f"never showed {words} at {self.url()}; it shows: {shown[:600]}")
            time.sleep(0.25)

    def wait_for(self, selector: str, timeout: float = 90) -> None:
        """Poll until an element matching the CSS `selector` is in the page."""
        deadline = time.monotonic() + timeout
        probe = f"document.querySelector({json.dumps(selector)}) !== null"
        while not self._between_pages(probe):
            if time.monotonic() > deadline:
                raise BrowserError(f"no {selector} at {self.url()}; it shows: {self.text()[:600]}")
            time.sleep(0.25)

    def type_into(self, selector: str, text: str) -> None:
        """Focus the field and type `text` into it as a keyboard would (so the page's own
        input handlers see it, whatever framework it uses)."""
        self.wait_for(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self._call("Input.insertText", text=text)

    def press_enter(self) -> None:
        """Enter in the focused field: what submits a login form."""
        for kind in ("keyDown", "keyUp"):
            self._call("Input.dispatchKeyEvent", type=kind, key="Enter", code="Enter",
                       windowsVirtualKeyCode=13, text="\r")  # fmt: skip

    def url(self) -> str:
        return str(self.evaluate("location.href"))

    def screenshot(self, path: Path) -> Path:
        data = self._call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _pipe_at_least(lowest: int) -> tuple[int, int]:
    """A pipe whose two ends are numbered `lowest` or above, so that moving them onto fds 3
    and 4 in the child cannot overwrite one with the other."""
    read, write = os.pipe()
    moved = (
        fcntl.fcntl(read, fcntl.F_DUPFD_CLOEXEC, lowest),
        fcntl.fcntl(write, fcntl.F_DUPFD_CLOEXEC, lowest),
    )
    os.close(read)
    os.close(write)
    return moved


def run(arguments: list[str], folder: Path, timeout: float = 60) -> str:
    """Chromium once with `arguments` (say --dump-dom or --screenshot and a URL), its profile
    in `folder`; its stdout. Whatever it leaves running is killed (stop)."""
    command = [str(CHROMIUM), *FLAGS, f"--user-data-dir={folder / 'profile'}", *arguments]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        stop(process, folder)
    assert process.returncode == 0, stderr
    return stdout


def stop(process: subprocess.Popen, folder: Path) -> None:
    """Kill the browser's process group, and any helper that left the group but names its
    `folder` (a crash handler); fail if one survives. SIGKILL is sure, not instant, and a
    helper may still be forking as the group dies: kill whatever is found until none is."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 20
    while (left := _survivors(process.pid, folder)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    assert not left, f"chromium processes survived: {left}"


def _survivors(group: int, folder: Path) -> list[int]:
    """Live (not zombie) processes in `group`, or whose command line names `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:  # after the parenthesised command: state, ppid, pgrp
            status, _, pgrp = (proc / "stat").read_text().rpartition(")")[2].split()[:3]
            line = (proc / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if status not in "ZX" and (int(pgrp) == group or str(folder).encode() in line):
            found.append(int(proc.name))
    return found


# --- reading a screenshot back ----------------------------------------------------------------


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered pixel rows of an 8-bit RGB(A) PNG, chunk by chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    assert header, "no IHDR"
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    pixel = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(idat), width * pixel
    assert len(raw) == height * (stride + 1)
    rows, previous = [], bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        rows.append(previous := _unfilter(kind, line, previous, pixel))
    return width, height, rows


def _unfilter(kind: int, line: bytearray, above: bytes, pixel: int) -> bytes:
    if kind == 0:
        return bytes(line)
    if kind == 2:
        return bytes((a + b) & 0xFF for a, b in zip(line, above, strict=True))
    for i in range(len(line)):
        left = line[i - pixel] if i >= pixel else 0
        up, corner = above[i], above[i - pixel] if i >= pixel else 0
        if kind == 1:
            predicted = left
        elif kind == 3:
            predicted = (left + up) // 2
        else:  # 4, Paeth
            guess = left + up - corner
            near = min((abs(guess - left), 0, left), (abs(guess - up), 1, up),
                       (abs(guess - corner), 2, corner))  # fmt: skip
            predicted = near[2]
        line[i] = (line[i] + predicted) & 0xFF
    return bytes(line)


def assert_drawn(path: Path, size: tuple[int, int] = SIZE) -> None:
    """The screenshot is the window's size and shows something: many colours (text, icons,
    anti-aliasing) and rows that differ, not a blank or one-colour page."""
    width, height, rows = png_pixels(path)
    assert (width, height) == size, (width, height)
    assert len(set(rows)) > height // 10, "most rows alike: next to nothing drawn"
    step = len(rows[0]) // width  # 3 bytes a pixel (RGB) or 4 (RGBA)
    pixels = {row[i : i + 3] for row in rows[::8] for i in range(0, len(row), step * 8)}
    assert len(pixels) > 16, f"{len(pixels)} colours: a blank page"
