"""The problem+json documents every route's answers may be, as the OpenAPI document describes them."""

from __future__ import annotations

from marshmallow import Schema, fields


class ProblemSchema(Schema):
    """RFC 9457 problem details, with a stable code and per-field messages."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True)
    errors = fields.Dict(keys=fields.String(), values=fields.Raw(), required=True)


PROBLEMS = {
    400: "Malformed request (bad JSON, a missing Idempotency-Key)",
    401: "No valid bearer token",
    403: "The caller's role does not allow this",
    404: "No such object in this organisation",
    409: "Conflicts with the object's state, or an Idempotency-Key reused for another request",
    413: "Request body too large",
    422: "Invalid input: the field and the rule are named",
    429: "Too many requests: Retry-After says when to come back",
    503: "The database cannot take requests now (down, read-only, out of disk): retry after Retry-After seconds, "
         "with the same Idempotency-Key",
}


def documents_problems(blp, *statuses: int):
    """Documents the 4xx answers a route can give, and the 503 any can, each as problem+json."""
    def decorate(view):
        for status in sorted({400, 401, 413, 429, 503, *statuses}):
            view = blp.alt_response(status, schema=ProblemSchema, description=PROBLEMS[status],
                                    content_type="application/problem+json")(view)
        return view
    return decorate
