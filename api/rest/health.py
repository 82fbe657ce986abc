"""Liveness and readiness: the process answers and its database does too."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields

from api.edge.session import read_session
from api.rest.common import Blueprint
from ledger.db.engine import ping

blp = Blueprint("health", __name__, url_prefix="/health", description="Service health")


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"example": "ok"})
    database = fields.String(required=True, metadata={"example": "ok"})


@blp.route("")
class Health(MethodView):
    @blp.response(200, HealthSchema)
    def get(self):
        """Answers ok when the service and its database are up."""
        ping(read_session())
        return {"status": "ok", "database": "ok"}
