"""The report as PDF: the HTML page printed by headless Chromium (`--print-to-pdf`), so the PDF
is exactly what the print styles of html_format.py lay out. No browser library: one process,
run with a fresh profile in a temporary directory that is removed afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["CHROMIUM_ENV", "QUIET_FLAGS", "PdfError", "find_chromium", "html_to_pdf"]

CHROMIUM_ENV = "MONITORD_CHROMIUM"
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")

# Without these Chromium, even headless, reaches for update, sync and safe-browsing servers
# (on a closed network it keeps retrying), wants a GPU and a sandbox that root cannot have.
QUIET_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-crash-reporter",
    "--disable-breakpad",
    # V8 without its JIT: the JIT needs writable and executable memory, which
    # MemoryDenyWriteExecute=yes in systemd/monitord.service forbids (Chromium would hang
    # until the timeout). The report has no script, so nothing is lost.
    "--js-flags=--jitless",
)

# The CLI has no paper-size flag and defaults to US Letter: A4 comes from a CSS @page rule put
# before the page's own styles, so a page that sets its own size (or orientation) still wins.
_A4_DEFAULT = "<style>@page { size: A4; }</style>"
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
_STDERR_LINES = 8
_KILL_WAIT = 10.0


class PdfError(Exception):
    """The PDF could not be made; the message says why and what to do."""


def find_chromium() -> str | None:
    """$MONITORD_CHROMIUM (a path or a command name), else the first of chromium,
    chromium-browser, google-chrome on PATH; None if there is none."""
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        # An explicit choice that does not work is not silently replaced by another browser.
        return shutil.which(configured)
    for name in _CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def html_to_pdf(html: str, *, chromium: str | None = None, timeout: float = 120) -> bytes:
    """The page printed to an A4 PDF (without the browser's header and footer lines).
    Raises PdfError if no browser is found, it fails, or it takes longer than `timeout` s."""
    browser = chromium or find_chromium()
    if browser is None:
        raise PdfError(_not_found_message())
    with tempfile.TemporaryDirectory(prefix="monitord-pdf-") as scratch:
        work = Path(scratch)
        page, output, profile = work / "report.html", work / "report.pdf", work / "profile"
        page.write_text(_with_a4_default(html), encoding="utf-8")
        command = [browser, "--headless", *QUIET_FLAGS, f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", f"--print-to-pdf={output}", page.as_uri()]
        # HOME too: a service user's home may be read-only, and nothing should be left there.
        environment = {**os.environ, "HOME": str(work)}
        _run(command, environment, timeout)
        try:
            document = output.read_bytes()
        except FileNotFoundError:
            raise PdfError(f"{browser} exited without writing the PDF") from None
    if not document.startswith(b"%PDF-"):
        raise PdfError(f"{browser} wrote a file that is not a PDF")
    return document


def _run(command: list[str], environment: dict[str, str], timeout: float) -> None:
    started = time.monotonic()
    try:
        # Its own session: on timeout the browser and the helpers it forked are killed by the
        # group id, which is the browser's PID.
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=environment,
                                   start_new_session=True)
    except OSError as error:
        raise PdfError(f"cannot start {command[0]}: {error}") from error
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process.pid)
        _reap(process)
        raise PdfError(f"{command[0]} did not finish printing within {timeout:g} s "
                       f"(stopped after {time.monotonic() - started:.0f} s)") from None
    if process.returncode != 0:
        raise PdfError(f"{command[0]} failed with exit code {process.returncode}"
                       + _stderr_tail(stderr))


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group has already gone
        os.killpg(pid, signal.SIGKILL)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.communicate(timeout=_KILL_WAIT)
    except subprocess.TimeoutExpired:
        # Its pipes are held by a process that left the group: stop reading, do not hang.
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait(timeout=_KILL_WAIT)


def _stderr_tail(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return ""
    return ":\n" + "\n".join(lines[-_STDERR_LINES:])


def _with_a4_default(html: str) -> str:
    match = _HEAD.search(html)
    if match is None:
        return _A4_DEFAULT + html
    return html[:match.end()] + _A4_DEFAULT + html[match.end():]


def _not_found_message() -> str:
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        return (f"{CHROMIUM_ENV}={configured} is not an executable browser: set it to "
                "Chromium's path, or unset it to use chromium from PATH")
    return ("no Chromium found to print the PDF (looked for " + ", ".join(_CANDIDATES)
            + f" on PATH): install it (apt install chromium) or set {CHROMIUM_ENV}")
