"""A Content-Security-Policy header on every response.

Django 5.2 has no CSP support of its own. The pages are server-rendered with
no inline script or style, so one strict policy covers them: everything from
this origin only, images also as ``data:`` URLs, no plugins, no framing.

Swagger UI and Redoc are the exceptions, on their two pages only. Swagger UI
starts from an inline script that carries the request's CSRF token, so its
SHA-256 hash is computed from each page as it is sent (the page holds only
our configuration, escaped). Unlike ``'unsafe-inline'``, a hash still refuses
whatever gets added in the browser later: an event-handler attribute or a
script written into the DOM by a rendered description. Both viewers bring
inline styles (Redoc inserts its own at run time) and Redoc builds its search
index in a ``blob:`` worker, so ``style-src`` and ``worker-src`` are relaxed
there. Redoc's attribution logo stays blocked: it comes from Redocly's CDN,
and the docs are served offline.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"

PAGE_POLICY: Mapping[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
DOCS_POLICY: Mapping[str, str] = {
    **PAGE_POLICY,
    "style-src": "'self' 'unsafe-inline'",
    "worker-src": "'self' blob:",
}
# URL names, so the exception follows the pages if their paths change.
DOCS_VIEWS = frozenset({"api:docs", "api:redoc"})

_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)


def policy_header(policy: Mapping[str, str]) -> str:
    return "; ".join(f"{name} {sources}" for name, sources in policy.items())


def inline_script_hashes(html: bytes) -> list[str]:
    """CSP source expressions for each inline ``<script>`` of a page."""
    digests = (hashlib.sha256(body).digest() for body in _INLINE_SCRIPT.findall(html))
    return [f"'sha256-{base64.b64encode(digest).decode()}'" for digest in digests]


_PAGE_HEADER = policy_header(PAGE_POLICY)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER in response:
            return response
        match = getattr(request, "resolver_match", None)
        if match is not None and match.view_name in DOCS_VIEWS and not response.streaming:
            hashes = " ".join(inline_script_hashes(response.content))
            policy = {**DOCS_POLICY, "script-src": f"'self' {hashes}".strip()}
            response[HEADER] = policy_header(policy)
        else:
            response[HEADER] = _PAGE_HEADER
        return response
