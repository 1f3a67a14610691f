"""`funnel dashboard` with /marketing and /customers answering fixed documents.

The real reports (issues 13 and 14) are served by every endpoint; here their routes answer
fixed documents of the same shape instead, so the page's drawing of known numbers can be
checked in a real browser. Run as `python -m tests.integration.stub_reports` with the FUNNEL_*
environment of a stopped worker.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from streams.settings import Settings
from streams.worker.report_endpoint import ROUTES, endpoint_app
from streams.worker.stopped_endpoint import ClientRunner, open_stopped

MARKETING: dict[str, Any] = {
    "site": "shop-a", "by": "utm_source", "attribution": "first_touch", "margin": "1",
    "channels": [
        {"key": "google", "currency": "EUR", "spend": "1120.50", "clicks": 300, "sessions": 410,
         "orders": 12, "revenue": "2480.00", "new_customers": 9, "cpo": "93.38", "cac": "124.50",
         "roas": 2.21, "romi": 1.21, "conversion": 0.029},
        {"key": "(direct)", "currency": "EUR", "spend": "0", "clicks": 0, "sessions": 200,
         "orders": 3, "revenue": "150.00", "new_customers": 2, "cpo": None, "cac": None,
         "roas": None, "romi": None, "conversion": 0.015},
    ],
    "totals": [],
}  # fmt: skip
CUSTOMERS: dict[str, Any] = {
    "site": "shop-a", "customers": 40, "guest_orders": 7, "repeat_customers": 10,
    "repeat_purchase_rate": 0.25, "orders_per_customer": 1.4, "aov": {"EUR": "62.10"},
    "historical_clv": {"EUR": "86.94"}, "clv_to_aov": 1.4,
    "segments": [
        {"segment": "champions", "customers": 4, "revenue": {"EUR": "900.00"}},
        {"segment": "hibernating", "customers": 11, "revenue": {"EUR": "310.40"}},
    ],
    "cohorts": [
        {"cohort": "2026-09", "size": 12, "retention": [0.5, 0.25, 0.0833]},
        {"cohort": "2026-10", "size": 20, "retention": [0.3, 0.1]},
    ],
}  # fmt: skip


def main() -> None:
    settings = Settings()
    runner = ClientRunner(open_stopped(settings))

    async def marketing(_: web.Request) -> web.Response:
        return web.json_response(MARKETING)

    async def customers(_: web.Request) -> web.Response:
        return web.json_response(CUSTOMERS)

    for name in ("marketing", "customers"):  # this process answers them with fixed documents
        ROUTES.pop(name)
    app = endpoint_app(settings, runner, live=False)
    app.router.add_get("/marketing", marketing)
    app.router.add_get("/customers", customers)
    try:
        web.run_app(app, host=settings.query_host, port=settings.query_port, print=None)
    finally:
        runner.close()


if __name__ == "__main__":
    main()
