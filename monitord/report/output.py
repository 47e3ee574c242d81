"""A report rendered in one format, and written so that readers never see half a file.

Shared by `monitord report` and the daemon's scheduled reports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from monitord.report.availability import Report
from monitord.report.html_format import render_html
from monitord.report.i18n import Language
from monitord.report.machine_formats import render_csv, render_json
from monitord.report.pdf import html_to_pdf

__all__ = ["FORMATS", "LANGUAGE_FORMATS", "render", "write_atomically"]

FORMATS = ("json", "csv", "html", "pdf")
LANGUAGE_FORMATS = frozenset({"html", "pdf"})  # the machine formats have one language


def render(report: Report, output_format: str, language: Language) -> bytes:
    """Raises PdfError (pdf only) when no browser can print the page."""
    if output_format == "pdf":
        return html_to_pdf(render_html(report, language))
    if output_format == "html":
        text = render_html(report, language)
    elif output_format == "csv":
        text = render_csv(report)
    else:
        text = render_json(report)
    return text.encode("utf-8")


def write_atomically(path: Path, content: bytes) -> None:
    """Write beside the target and rename: a web server or mail job never sees half a report."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, 0o644)  # a report is for sharing; mkstemp would make it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
