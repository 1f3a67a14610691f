"""Who may read the endpoint: anyone on loopback by default; the token holder once one is set.

Settings refuse a non-loopback bind without FUNNEL_DASHBOARD_TOKEN, so the network never sees
the numbers by accident. With a token, every request carries it: as the X-Funnel-Token header
(`funnel report`, scripts) or as a cookie a browser gets once from `/login?token=…`, which
then redirects to the page so the token leaves the address bar and the history.
"""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from streams.report.store import TOKEN_COOKIE, TOKEN_HEADER

LOGIN_PATH = "/login"


def _matches(offered: str | None, token: str) -> bool:
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


def token_middleware(token: str) -> Middleware:
    """Refuse (401) requests without the token; `/login?token=` sets the browser's cookie."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == LOGIN_PATH:
            if not _matches(request.query.get("token"), token):
                return _refused("wrong or missing token in the login URL")
            # Back to the page, keeping its other parameters but not the token.
            kept = {name: value for name, value in request.query.items() if name != "token"}
            page = request.rel_url.with_path("/").with_query(kept)
            response = web.Response(status=303, headers={"Location": str(page)})
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
            return response
        offered = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
        if not _matches(offered, token):
            return _refused(
                f"send the dashboard token as the {TOKEN_HEADER} header, "
                f"or open {LOGIN_PATH}?token=… once in the browser"
            )
        return await handler(request)

    return check


def _refused(why: str) -> web.Response:
    return web.json_response({"error": f"401 unauthorized: {why}"}, status=401)
