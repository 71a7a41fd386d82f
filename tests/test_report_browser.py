"""The page in headless Chromium at a phone's width: no figure wider than a 400 px viewport, no
text (SVG or HTML) below 11 px, and the figures' own legend and tick text at least 11 px."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mlpbench.report import build_report
from mlpbench.report.style import DPI, SMALL_PT

ROOT = Path(__file__).resolve().parents[1] / "results" / "runs" / "amd-epyc-2c"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


def test_figure_text_is_at_least_11_px_at_native_size():
    assert SMALL_PT * DPI / 72 >= 11


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed "
                    "(apt-get install chromium)")
@pytest.mark.skipif(not (ROOT / "sweep" / "sweep.csv").exists(), reason="no reference results")
def test_phone_width_layout(tmp_path):
    build_report(None, [str(ROOT / "sweep"), str(ROOT / "converge")],
                 tmp_path / "r.html")
    # a headless window is at least 500 px wide: the page runs in a 400 px frame, whose
    # body attributes (set by the page's own load handler) the wrapper copies out
    wrapper = tmp_path / "phone.html"
    wrapper.write_text(
        "<!doctype html><body style='margin:0'><iframe id=f src='r.html' width=400 "
        "height=900 style='border:0'></iframe><pre id=out></pre><script>"
        "document.getElementById('f').addEventListener('load', function () {"
        "var b = this.contentDocument.body; var o = document.getElementById('out');"
        "Array.prototype.forEach.call(b.attributes, function (a) {"
        "o.setAttribute(a.name, a.value); }); });</script></body>")
    dom = subprocess.run([CHROMIUM, *FLAGS, "--allow-file-access-from-files",
                          "--window-size=600,900", "--virtual-time-budget=20000",
                          "--dump-dom", wrapper.as_uri()],
                         capture_output=True, text=True, timeout=180, check=True).stdout
    body = re.search(r"<pre id=\"out\"([^>]*)>", dom).group(1)
    attr = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert attr["js-errors"] == "0" and attr["broken-images"] == "0"
    assert int(attr["images"]) > 3  # the check saw figures, not an empty page
    viewport = int(attr["viewport"])
    assert 300 <= viewport <= 400
    assert 0 < int(attr["widest-figure"]) <= viewport
    assert 11 <= float(attr["smallest-text-px"]) < 1e9
