"""Each document rendered from an open ClickHouse client: the CLI and the worker's endpoint
both answer through these, so `funnel X` and GET /X are the same bytes."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from sinks.customer_queries import query_customers
from sinks.marketing_queries import query_marketing
from sinks.report_queries import query_report
from streams.report.customers import CustomersRequest
from streams.report.customers_view import render_customers
from streams.report.marketing import MarketingRequest, marketing_document
from streams.report.marketing_view import render_marketing
from streams.report.numbers import ReportRequest, build_report
from streams.report.view import render

Request = ReportRequest | MarketingRequest | CustomersRequest


def answer_body(client: Client, database: str, request: Request, *, retention_ms: int) -> bytes:
    """``retention_ms``: the worker's ``FunnelRules.retention_ms`` (see ``query_report``)."""
    match request:
        case ReportRequest():
            counts = query_report(client, database, request.query, retention_ms=retention_ms)
            return render(build_report(request, counts), as_json=request.as_json)
        case MarketingRequest():
            document = marketing_document(request, query_marketing(client, database, request.query))
            return render_marketing(document, as_json=request.as_json)
        case CustomersRequest():
            return render_customers(request, query_customers(client, database, request.query))


def content_type(request: Request) -> str:
    if isinstance(request, CustomersRequest) and request.as_csv:
        return "text/csv"
    return "application/json" if request.as_json else "text/plain"
