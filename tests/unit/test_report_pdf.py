"""monitord.report.pdf without a real browser: which browser it picks, and what it says and
cleans up when the browser fails, hangs or writes nothing. The stand-in browsers are tiny shell
scripts that take the same arguments (the real one is in tests/integration/test_report_render.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from monitord.report.pdf import CHROMIUM_ENV, PdfError, find_chromium, html_to_pdf

PAGE = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>@page { size: A4 landscape; }' \
       "</style></head><body><h1>Laporan</h1></body></html>"

# Writes what it was given into $CAPTURE and a fake PDF where --print-to-pdf says.
PRINTS = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    --print-to-pdf=*) out="${arg#--print-to-pdf=}" ;;
    --user-data-dir=*) echo "${arg#--user-data-dir=}" > "$CAPTURE.profile" ;;
    file://*) cat "${arg#file://}" > "$CAPTURE.html" ;;
  esac
done
echo "$HOME" > "$CAPTURE.home"
printf '%%PDF-1.4 pretend\\n' > "$out"
"""


def browser(directory: Path, name: str, script: str) -> Path:
    path = directory / name
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH is only this directory (and no MONITORD_CHROMIUM): what is found is put here."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    monkeypatch.delenv(CHROMIUM_ENV, raising=False)
    return directory


# -- which browser ---------------------------------------------------------------------------

def test_the_first_browser_on_path_in_order(bare_path: Path) -> None:
    assert find_chromium() is None
    browser(bare_path, "google-chrome", PRINTS)
    assert find_chromium() == str(bare_path / "google-chrome")
    browser(bare_path, "chromium-browser", PRINTS)
    assert find_chromium() == str(bare_path / "chromium-browser")
    browser(bare_path, "chromium", PRINTS)
    assert find_chromium() == str(bare_path / "chromium")


def test_monitord_chromium_wins_and_is_not_replaced_when_wrong(
        bare_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    browser(bare_path, "chromium", PRINTS)
    chosen = browser(tmp_path, "my-chrome", PRINTS)
    monkeypatch.setenv(CHROMIUM_ENV, str(chosen))
    assert find_chromium() == str(chosen)
    monkeypatch.setenv(CHROMIUM_ENV, "chromium")  # a command name is looked up on PATH
    assert find_chromium() == str(bare_path / "chromium")
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "missing"))
    assert find_chromium() is None
    with pytest.raises(PdfError, match=f"{CHROMIUM_ENV}=.*missing is not an executable"):
        html_to_pdf(PAGE)


def test_no_browser_says_how_to_install_one(bare_path: Path) -> None:
    with pytest.raises(PdfError, match=r"apt install chromium"):
        html_to_pdf(PAGE)


# -- printing --------------------------------------------------------------------------------

def test_prints_a4_by_default_without_touching_home_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    capture = tmp_path / "capture"
    monkeypatch.setenv("CAPTURE", str(capture))
    fake = browser(tmp_path, "chromium", PRINTS)
    assert html_to_pdf(PAGE, chromium=str(fake)) == b"%PDF-1.4 pretend\n"
    printed = Path(f"{capture}.html").read_text(encoding="utf-8")
    # The A4 default comes first, so the page's own @page (landscape) still wins.
    assert printed.index("@page { size: A4; }") < printed.index("size: A4 landscape")
    assert "<h1>Laporan</h1>" in printed
    profile = Path(Path(f"{capture}.profile").read_text(encoding="utf-8").strip())
    home = Path(Path(f"{capture}.home").read_text(encoding="utf-8").strip())
    assert profile.parent == home  # one scratch directory for everything
    assert not home.exists()
    assert home != Path.home()


def test_a_failing_browser_reports_its_exit_code_and_last_stderr_lines(tmp_path: Path) -> None:
    fake = browser(tmp_path, "chromium", "#!/bin/sh\n"
                   "for n in $(seq 1 30); do echo \"line $n\" >&2; done\nexit 3\n")
    with pytest.raises(PdfError) as raised:
        html_to_pdf(PAGE, chromium=str(fake))
    message = str(raised.value)
    assert "exit code 3" in message
    assert "line 30" in message
    assert "line 23" in message
    assert "line 22\n" not in message  # only the last lines: Chromium's stderr is long


@pytest.mark.parametrize(("script", "complaint"), [
    ("#!/bin/sh\nexit 0\n", "without writing the PDF"),
    ("#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --print-to-pdf=*) "
     "echo '<html>' > \"${a#--print-to-pdf=}\";; esac; done\n", "not a PDF"),
])
def test_a_browser_that_prints_nothing_useful_is_an_error(tmp_path: Path, script: str,
                                                          complaint: str) -> None:
    with pytest.raises(PdfError, match=complaint):
        html_to_pdf(PAGE, chromium=str(browser(tmp_path, "chromium", script)))


def test_a_browser_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    not_executable = tmp_path / "chromium"
    not_executable.write_text("not a program", encoding="utf-8")
    with pytest.raises(PdfError, match="cannot start"):
        html_to_pdf(PAGE, chromium=str(not_executable))


def test_a_hanging_browser_is_killed_with_what_it_started(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pids = tmp_path / "pids"
    monkeypatch.setenv("PIDS", str(pids))
    # A helper process of its own too, as Chromium has: both must go.
    fake = browser(tmp_path, "chromium", "#!/bin/sh\nsleep 60 &\n"
                   "echo \"$$ $!\" > \"$PIDS\"\nwait\n")
    started = time.monotonic()
    with pytest.raises(PdfError, match=r"did not finish printing within 0.5 s"):
        html_to_pdf(PAGE, chromium=str(fake), timeout=0.5)
    assert time.monotonic() - started < 10
    for pid in (int(p) for p in pids.read_text(encoding="utf-8").split()):
        assert not alive(pid, within=5.0), pid


def alive(pid: int, within: float) -> bool:
    """Whether pid still runs after up to `within` s (a killed orphan waits to be reaped by
    init, as a zombie, which is not running)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
        except FileNotFoundError:
            return False
        if status.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return False
        time.sleep(0.05)
    return os.path.exists(f"/proc/{pid}")
