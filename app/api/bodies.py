"""Response bodies sent as built.

A plain `def` route's return value is validated against its `response_model` in a second trip through the
thread pool, then serialised. The routes here build their `...Out` model once (that is the validation) and
return its JSON as a `Response`, which FastAPI sends as is; the `response_model` on the route still documents
the body in OpenAPI, and the schemathesis test checks that what is sent matches it.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_body(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")
