"""Who may read the endpoint: anyone on loopback by default; the token holder once one is set.

Settings refuse a non-loopback bind without FUNNEL_DASHBOARD_TOKEN, so the network never sees
the numbers by accident. With a token, every request carries it: as the X-Funnel-Token header
(`funnel report`, scripts) or as an HttpOnly cookie a browser gets from a one-time login URL.
Such a URL holds a random code, not the token, and works once: it is printed at start
(`funnel dashboard`, the worker's log), and `GET /login/new` with the header makes another.
"""

from __future__ import annotations

import hmac
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from streams.report.store import TOKEN_COOKIE, TOKEN_HEADER

LOGIN_PATH = "/login"
NEW_LOGIN_PATH = "/login/new"
_OPEN_CODES = 100  # unused login codes kept; the oldest go first


class TokenGate:
    def __init__(self, token: str) -> None:
        self._token = token
        self._codes: dict[str, None] = {}  # insertion-ordered set

    def login_path(self) -> str:
        """A fresh one-time login path (`/login?code=…`)."""
        code = secrets.token_urlsafe(24)
        self._codes[code] = None
        while len(self._codes) > _OPEN_CODES:
            del self._codes[next(iter(self._codes))]
        return f"{LOGIN_PATH}?code={code}"

    def _redeem(self, code: str | None) -> bool:
        if code is None or code not in self._codes:
            return False
        del self._codes[code]
        return True

    def _allows(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered.encode(), self._token.encode())

    def middleware(self) -> Middleware:
        @web.middleware
        async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path == LOGIN_PATH:
                return self._login(request)
            offered = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE)
            if not self._allows(offered):
                return _refused(
                    f"send the dashboard token as the {TOKEN_HEADER} header, or open a "
                    f"one-time login URL (GET {NEW_LOGIN_PATH} with the header makes one)"
                )
            if request.path == NEW_LOGIN_PATH:
                return web.json_response({"path": self.login_path()})
            return await handler(request)

        return check

    def _login(self, request: web.Request) -> web.Response:
        if not self._redeem(request.query.get("code")):
            return _refused("this login URL is unknown or was used already")
        # On to the page with its other parameters; the spent code leaves the address bar.
        kept = {name: value for name, value in request.query.items() if name != "code"}
        response = web.Response(
            status=303, headers={"Location": str(request.rel_url.with_path("/").with_query(kept))}
        )
        response.set_cookie(TOKEN_COOKIE, self._token, httponly=True, samesite="Strict", path="/")
        return response


# The gate of an app that has one: who serves the app mints its first login URL with it.
GATE = web.AppKey("funnel_token_gate", TokenGate)


def dashboard_url(base: str, app: web.Application | None, *, token_set: bool) -> str:
    """The page's address; behind a token, a one-time login URL when `app` can mint one."""
    if not token_set:
        return f"{base}/"
    if app is not None and GATE in app:
        return base + app[GATE].login_path()
    return (
        f"{base}/  (token set: GET {base}{NEW_LOGIN_PATH} with the {TOKEN_HEADER} header "
        "gives a one-time login URL)"
    )


def _refused(why: str) -> web.Response:
    return web.json_response({"error": f"401 unauthorized: {why}"}, status=401)
