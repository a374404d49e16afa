"""Each bundled case's report in headless Chromium, at a desktop and a 375 px phone width.

Checks: no console errors and no network requests, every section heading present, nothing wider
than the page, and the report under 1 MB. Screenshots and the reports are kept in
test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from advisor.report.render import _sections

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CASES = ["telco-churn", "credit-scoring", "car-loans"]
WIDTHS = {"desktop": 1280, "phone": 375}
MAX_BYTES = 1_000_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Elements whose right edge passes the viewport, ignoring anything inside a horizontally
# scrollable (or clipping) wrapper and the inside of SVG drawings.
OVERFLOW_JS = """
() => {
  const limit = window.innerWidth + 1;
  const clipped = (el) => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX;
      if (o === "auto" || o === "scroll" || o === "hidden") return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") && el.tagName.toLowerCase() !== "svg") continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > limit && !clipped(el)) {
      out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
               (el.className && typeof el.className === "string" ? "." + el.className : "") +
               " right=" + Math.round(r.right));
    }
  }
  return out.slice(0, 10);
}
"""


@pytest.fixture(scope="session")
def bundled_reports(bundled_analysis) -> dict[str, dict]:
    """Each bundled case run once: its report written to test-artifacts/, with size and timing."""
    ARTIFACTS.mkdir(exist_ok=True)
    out = {}
    for name in CASES:
        result = bundled_analysis(name)
        payload = result.to_dict()
        start = time.perf_counter()
        html = result.to_html(ARTIFACTS / f"{name}.html")
        render_seconds = time.perf_counter() - start
        result.to_json(ARTIFACTS / f"{name}.json")
        out[name] = {
            "path": ARTIFACTS / f"{name}.html",
            "bytes": len(html.encode("utf-8")),
            "render_seconds": render_seconds,
            "titles": [s["title"] for s in _sections(payload)],
            "options": len(payload["recommendation"]["options"]),
        }
    summary = {
        n: {"bytes": r["bytes"], "render_seconds": round(r["render_seconds"], 3)}
        for n, r in out.items()
    }
    (ARTIFACTS / "report-sizes.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out


@contextmanager
def watched_page(browser, path: Path, width: int):
    """A page at `width` px open on `path`, with its console errors and network requests."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "request",
        lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None,
    )
    try:
        page.goto(path.as_uri(), wait_until="load")
        yield page, errors, requests
    finally:
        page.close()


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright; skipped when missing, except in CI, which must run it."""
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test, but /usr/bin/chromium is missing")
        pytest.skip("chromium is not installed (/usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.mark.parametrize("name", CASES)
def test_report_is_small(bundled_reports: dict, name: str):
    assert bundled_reports[name]["bytes"] < MAX_BYTES


@pytest.mark.parametrize("width", list(WIDTHS))
@pytest.mark.parametrize("name", CASES)
def test_report_in_chromium(bundled_reports: dict, browser, name: str, width: str):
    report = bundled_reports[name]
    with watched_page(browser, report["path"], WIDTHS[width]) as (page, errors, requests):
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        assert errors == [], f"console errors: {errors}"
        assert requests == [], f"network requests: {requests}"
        headings = [h.strip() for h in page.locator("main section > h2").all_inner_texts()]
        assert headings == report["titles"]
        assert "Offline comparison" in headings and "Reproducibility" in headings
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"page is {scroll}px wide in a {inner}px window"
        assert page.evaluate(OVERFLOW_JS) == []
        toc = page.locator("nav.toc")
        assert toc.is_visible() == (width == "desktop")
        assert page.locator("script").count() == 0


@pytest.mark.parametrize("name", CASES)
def test_summary_options_table_fits_a_phone(bundled_reports: dict, browser, name: str):
    """At 375 px the options table shows every net value without scrolling sideways."""
    with watched_page(browser, bundled_reports[name]["path"], WIDTHS["phone"]) as (page, _, _):
        wrap = page.locator("#summary table.options").locator("xpath=..")
        scroll, client = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert scroll <= client, f"the options table is {scroll}px wide in {client}px"
        nets = page.locator("#summary table.options tr > td:last-child")
        options = bundled_reports[name]["options"]  # three, and keep-incumbent with one
        assert nets.count() == options >= 3
        for i in range(options):
            box = nets.nth(i).bounding_box()
            assert box["x"] + box["width"] <= WIDTHS["phone"]
            assert nets.nth(i).inner_text().strip()[0] in "0123456789−"


@pytest.fixture(scope="session")
def monitor_page(credit_run, tmp_path_factory) -> Path:
    """monitor.html for a simulated week of credit-scoring with a shadow, a canary whose split
    is off, an input that drifts and outcomes that arrive late: every section drawn."""
    import pandas as pd
    from production import outcomes, simulate, test_rows, write_log

    from advisor.monitor import monitor, write

    rows = test_rows("credit-scoring")
    inputs = list(
        dict.fromkeys(json.loads((credit_run / "policies/ml/bundle.json").read_text())["inputs"])
    )
    shifted = rows.assign(Income=rows["Income"] * 3)
    log = pd.concat(
        [
            simulate(credit_run, rows, "Status", days=3, treatment="ml", share=0.6, shadow="ml"),
            simulate(
                credit_run,
                shifted,
                "Status",
                days=2,
                treatment="ml",
                share=0.6,
                shadow="ml",
                start="2026-03-05",
                seed=1,
            ),
        ],
        ignore_index=True,
    )
    tmp = tmp_path_factory.mktemp("monitor-page")
    write_log(log, tmp / "log", inputs)
    outcomes(log, "Status", now="2026-03-07").to_csv(tmp / "outcomes.csv", index=False)
    found = monitor(credit_run, tmp / "log", tmp / "outcomes.csv")
    assert {a["kind"] for a in found.alerts} >= {"srm", "drift"}
    folder = write(found, tmp / "out")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "monitor.html").write_text((folder / "monitor.html").read_text())
    return folder / "monitor.html"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_monitor_page_in_chromium(monitor_page: Path, browser, width: str):
    with watched_page(browser, monitor_page, WIDTHS[width]) as (page, errors, requests):
        page.screenshot(path=str(ARTIFACTS / f"monitor-{width}.png"), full_page=True)
        assert errors == [], f"console errors: {errors}"
        assert requests == [], f"network requests: {requests}"
        headings = [h.strip() for h in page.locator("main section > h2").all_inner_texts()]
        assert headings[0] == "Verdict"
        assert {"Input drift", "Realised cost", "Shadow", "Canary and A/B test"} <= set(headings)
        verdict = page.locator("#verdict .option")
        assert verdict.is_visible() and "Roll back" in verdict.inner_text()
        assert verdict.bounding_box()["y"] < 900  # on the first screen
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"page is {scroll}px wide in a {inner}px window"
        assert page.evaluate(OVERFLOW_JS) == []
        assert page.locator("script").count() == 0
        assert page.locator("svg").count() >= 3
