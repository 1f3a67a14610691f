"""Reading the dashboard: its JSON over HTTP, what the page in Chromium shows, its refusals."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from playwright.sync_api import Page

from tests.integration.browser import ConsoleErrors, chromium


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def api(base: str, path: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    status, body = get(f"{base}{path}?{urlencode(params)}", headers)
    assert status == 200, body
    return orjson.loads(body)


def wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def same_percent(text: str, value: float | None) -> bool:
    """The page rounds to one decimal; a missing ratio (nobody before the step) shows a dash."""
    if value is None:
        return text == "–"  # noqa: RUF001 - the page's dash for "no value"
    return text.endswith("%") and abs(float(text[:-1]) - 100 * value) <= 0.05 + 1e-9


def money(text: str) -> str:
    whole, _, cents = text.partition(".")
    return f"{int(whole):,}.{cents}"


def field(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


def assert_page_shows(page: Page, report: dict[str, Any]) -> None:
    """Every number the page draws from /api/report equals the document's."""
    assert field(page, '.tiles [data-field="sessions"]') == f"{report['stages'][0]['sessions']:,}"
    for i, stage in enumerate(report["stages"]):
        row = f'#funnel-table tr[data-stage="{stage["stage"]}"]'
        assert field(page, f'{row} [data-field="sessions"]') == f"{stage['sessions']:,}"
        if i:
            step = report["steps"][i - 1]
            shown = field(page, f'{row} [data-field="step"]')
            assert same_percent(shown, step["conversion"]), (stage, shown, step)
    worst = report["worst_step"]
    if worst is None:
        assert page.locator('tr[data-worst="true"]').count() == 0
        assert "none" in field(page, "#worst")
    else:
        assert page.locator('tr[data-worst="true"]').get_attribute("data-stage") == worst["to"]
        assert f"{worst['from']} → {worst['to']}" in field(page, "#worst")
    overall = field(page, '.tiles [data-field="overall_conversion"]')
    assert same_percent(overall, report["overall_conversion"]), overall
    assert field(page, '.tiles [data-field="orders"]') == f"{report['orders']:,}"
    assert page.locator("#money-table tbody tr[data-currency]").count() == len(report["revenue"])
    for currency, amount in report["revenue"].items():
        row = f'#money-table tr[data-currency="{currency}"]'
        assert field(page, f'{row} [data-field="revenue"]') == money(amount)
        assert field(page, f'{row} [data-field="aov"]') == money(report["aov"][currency])
    for key in ("carts_opened", "carts_abandoned", "carts_recovered"):
        assert field(page, f'[data-field="{key}"]') == f"{report[key]:,}"
    rate = field(page, '.facts [data-field="cart_abandonment"]')
    assert same_percent(rate, report["cart_abandonment_rate"]), rate


def assert_breakdown_shows(page: Page, report: dict[str, Any]) -> None:
    rows = page.locator("#breakdown-table tbody tr")
    assert rows.count() == len(report["breakdown"])
    for i, entry in enumerate(report["breakdown"]):
        cells = rows.nth(i).locator("th, td").all_inner_texts()
        assert cells[0] == entry["key"]
        assert cells[1:5] == [f"{s['sessions']:,}" for s in entry["stages"]], entry["key"]


def loads(page: Page) -> int:
    return int(page.locator("body").get_attribute("data-loaded") or 0)


def showing(page: Page, site: str, lo: str, hi: str, by: str = "") -> Callable[[], bool]:
    """True once a load of exactly this query finished (auto-refreshes run meanwhile)."""
    wanted = "|".join((site, lo, hi, by))
    return lambda: page.locator("body").get_attribute("data-shown") == wanted


def answers(base: str) -> bool:
    try:
        get(base + "/")
    except OSError:
        return False
    return True


def bad_parameters_are_400(base: str, token: dict[str, str], span: dict[str, str]) -> None:
    year_ago = (datetime.fromisoformat(span["to"]) - timedelta(days=400)).isoformat()
    cases = [
        ("/api/report", span | {"site": "no-such-shop"}, "unknown site"),
        ("/api/report", span | {"from": span["to"], "to": span["from"]}, "must be before"),
        ("/api/report", span | {"from": year_ago}, "366-day limit"),
        ("/api/report", span | {"by": "device; DROP TABLE funnel.orders"}, "cannot break down"),
        ("/api/report", span | {"by": "' OR 1=1 --"}, "cannot break down"),
        ("/api/report", span | {"by": "device) UNION SELECT 1 --"}, "cannot break down"),
        ("/api/report", span | {"from": "yesterday"}, "not an ISO 8601"),
        ("/api/report", span | {"from": "0001-01-01T00:00:00+01:00"}, "not an ISO 8601"),
        ("/api/report", {"from": span["from"], "to": span["to"]}, "missing parameter 'site'"),
        ("/api/report", span | {"min_sessions": "-1"}, "whole number"),
        ("/api/report", span | {"evil": "1"}, "unknown parameter"),
        ("/api/series", span | {"site": "<script>alert(1)</script>"}, "unknown site"),
        ("/api/series", span | {"to": span["from"]}, "must be before"),
        ("/api/dead-letters", {"from": "x", "to": span["to"]}, "not an ISO 8601"),
        ("/report", span | {"by": "device; DROP TABLE funnel.orders"}, "cannot break down"),
        ("/report", span | {"from": "0001-01-01T00:00:00+01:00"}, "out of range"),
    ]
    for path, params, message in cases:
        status, body = get(f"{base}{path}?{urlencode(params)}", token)
        assert status == 400, (path, params, status, body)
        assert message.encode() in body, (path, params, body)
        assert b"Traceback" not in body


def logs_in_with_the_cookie(login: str, span: dict[str, str]) -> None:
    """A browser opens a one-time login URL, gets the cookie, and lands on the page."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = ConsoleErrors(page)
        page.goto(f"{login}&{urlencode(span)}")
        wait_for(lambda: loads(page) >= 1, timeout=60, what="the page after login")
        assert "code" not in page.url
        assert "site=shop-a" in page.url
        assert "not refreshing" in field(page, "#status")  # a stopped worker's data
        assert field(page, '.tiles [data-field="sessions"]')[0].isdigit()
        assert errors.seen == []
