"""JSON in and out through orjson, with the body-size limit enforced while
reading.

DRF hands the raw request stream to its parser, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked only by ``request.body`` and form
parsing) never applies to a JSON body: this parser checks it itself, against
the bytes actually read, not only the Content-Length the client claims.

orjson is several times faster than the standard library on a 1,000-item
batch, and refuses what is not JSON by itself: NaN, Infinity, numbers that
overflow a double, invalid UTF-8, nesting deeper than 1,024 levels.
"""

from __future__ import annotations

from decimal import Decimal
from typing import IO, Any

import orjson
from django.conf import settings
from django.utils.functional import Promise
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer

from detection.api.errors import PayloadTooLarge


class JSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[bytes], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        body = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(body) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"malformed JSON: {exc}") from None


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Promise):  # lazy translations in DRF's messages
        return str(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


class JSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # JSON is UTF-8 by definition

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        # The browsable API asks for indented output.
        indent = (renderer_context or {}).get("indent")
        return orjson.dumps(data, default=_default, option=orjson.OPT_INDENT_2 if indent else 0)
