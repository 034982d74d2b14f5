"""JSON in, with the body-size limit enforced while reading.

DRF hands the raw request stream to its parser, so Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (checked only by ``request.body`` and form
parsing) never applies to a JSON body: this parser checks it itself, against
the bytes actually read, not only the Content-Length the client claims.
"""

from __future__ import annotations

import json
from typing import IO, Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from detection.api.errors import PayloadTooLarge


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity, which JSON does not have.
    raise ValueError(f"{name} is not valid JSON; send a finite number")


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
            return json.loads(body, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("malformed JSON: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            raise ParseError(f"malformed JSON: {exc}") from None
