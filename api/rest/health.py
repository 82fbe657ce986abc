"""Where to start (the root) and whether the service is up: readiness (``/health``: the database answers and takes
writes) and liveness (``/health/live``: the process answers, and nothing else is asked)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.edge.session import database, read_session
from api.rest.common import PROBLEMS, Blueprint, ProblemSchema
from ledger.db.engine import can_write
from ledger.demo import DEMO_PASSWORD, DEMO_PEOPLE, demo_loaded

blp = Blueprint("health", __name__, url_prefix="/health", description="Service health")
home_blp = Blueprint("home", __name__, url_prefix="/", description="Where to start")


class HomeSchema(Schema):
    service = fields.String(required=True)
    documentation = fields.String(required=True, metadata={"description": "Swagger UI for the whole API"})
    openapi = fields.String(required=True)
    api = fields.String(required=True)
    health = fields.String(required=True)
    demo = fields.String(required=True, allow_none=True, metadata={
        "description": "How to sign in to the demo `make run` loads; null where the demo is not loaded"})


@home_blp.route("")
class Home(MethodView):
    @home_blp.response(200, HomeSchema)
    def get(self):
        """Where to start: the documentation, the API, the health check, and how to sign in to the demo. A browser
        (which prefers text/html) gets the public home page instead: the organisations and their open funds."""
        return {
            "service": "FundLedger: a double-entry ledger for charities and community funds",
            "documentation": "/api/docs/", "openapi": "/api/openapi.json", "api": "/api/v1", "health": "/health",
            "demo": f"`make run` loaded a demo foundation; its people ({', '.join(email for email, *_ in DEMO_PEOPLE)})"
                    f" sign in with the password {DEMO_PASSWORD} at POST /api/v1/tokens, for a token to send as "
                    "`Authorization: Bearer <token>`" if demo_loaded(read_session()) else None,
        }


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    database = fields.String(required=True, metadata={"example": "ok"})


class LiveSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    @blp.alt_response(503, schema=ProblemSchema, description=PROBLEMS[503], content_type="application/problem+json")
    def get(self):
        """Readiness: ok when the database answers and takes writes (a write statement that changes nothing, in a
        transaction of its own); else 503 ``store_unavailable``, as every request then answers."""
        database().write(can_write, attempts=1)
        return {"status": "ok", "database": "ok"}


@blp.route("/live")
class Live(MethodView):
    @blp.response(200, LiveSchema)
    def get(self):
        """Liveness: the process answers. Asks nothing of the database, so it stays cheap and a database outage does
        not get healthy processes restarted."""
        return {"status": "ok"}
