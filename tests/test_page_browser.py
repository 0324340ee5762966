"""The demo's page in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Checked: every section and every figure of the suite is on the page, no image is broken, the page
logs no console error, and a screenshot of the top section is written to
``build/browser/top-<tier>.png`` (kept as a CI artifact). The default tier checks the page of the
tiny demo (the session fixture); the slow tier runs ``occam demo`` at the quick size and checks
its page.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from occamlab.experiments import SUITE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "build" / "browser"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    sync_playwright = None

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or sync_playwright is None,
    reason="needs Debian's chromium (apt-get install chromium; `make test` installs it as root) "
           "and Playwright for Python (pip install playwright)")


def check_page(index: Path, screenshot: Path) -> dict[str, Any]:
    """Open ``index`` in headless Chromium; return what the page holds and what went wrong."""
    assert sync_playwright is not None and CHROMIUM is not None
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(index.resolve().as_uri(), wait_until="load")
            info = page.evaluate("""() => ({
                sections: Array.from(document.querySelectorAll('h2[id]')).map(h => h.id),
                links: Array.from(document.querySelectorAll('header a')).map(a => a.hash),
                images: document.images.length,
                broken: Array.from(document.images)
                    .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt),
                alts: Array.from(document.images).map(i => i.alt),
                title: document.title,
            })""")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.locator("header").screenshot(path=str(screenshot))
        finally:
            browser.close()
    info["errors"] = errors
    return info


def _check(out: Path, tier: str) -> None:
    results = json.loads((out / "results.json").read_text())
    shot = ARTIFACTS / f"top-{tier}.png"
    info = check_page(out / "index.html", shot)
    assert info["errors"] == []
    assert info["sections"] == list(SUITE)
    assert info["links"] == [f"#{name}" for name in SUITE]
    assert info["broken"] == []
    assert info["images"] >= 4 * len([r for r in results.values() if r["status"] != "failed"])
    assert all(a and not a.endswith((".png", ".svg")) for a in info["alts"])  # not file names
    assert shot.stat().st_size > 5_000


def test_tiny_demo_page_in_chromium(tiny_demo: Any) -> None:
    out, _ = tiny_demo
    _check(out, "tiny")


@pytest.mark.slow
def test_quick_demo_page_in_chromium(tmp_path: Path) -> None:
    from occamlab.experiments import run_demo

    res = run_demo(size="quick", out=tmp_path / "demo", jobs=2)
    assert not res.failed, res.experiments
    assert res.elapsed_s < 15 * 60, f"the quick demo took {res.elapsed_s:.0f} s"
    _check(tmp_path / "demo", "quick")
