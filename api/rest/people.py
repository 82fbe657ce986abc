"""Users and their tokens: signing in with a password gives a token (shown once); a token is revoked by its
holder; platform administrators create users; `/me` tells callers who they are and what they may do."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.edge.auth import bearer_token, current_principal, requires
from api.edge.writes import UnitOfWork, perform
from api.rest.common import Blueprint, documents_problems, storable, strict_boolean, text
from ledger.access.policy import Need
from ledger.access.tokens import MAX_TOKEN_DAYS, issue_token, revoke_token, token_prefix
from ledger.access.users import MIN_PASSWORD_LENGTH, create_user, find_user_by_password
from ledger.core.errors import Unauthenticated

blp = Blueprint("people", __name__, url_prefix="/api/v1", description="Users, tokens, and who am I")
# Signing in has a blueprint of its own so that its tighter rate limit (api/edge/limits.py) covers it alone.
sign_in_blp = Blueprint("sign_in", __name__, url_prefix="/api/v1", description="Signing in for a token")


class TokenInSchema(Schema):
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True, validate=[validate.Length(min=1, max=1000), storable])
    name = text(200, metadata={"description": "What the token is for"})
    days = fields.Integer(load_default=90, strict=True, validate=validate.Range(min=1, max=MAX_TOKEN_DAYS))


class TokenSchema(Schema):
    token = fields.String(required=True, metadata={"description": "Shown this once; only its hash is kept"})
    prefix = fields.String(required=True)
    name = fields.String(required=True)
    expires_at = fields.DateTime(required=True)


class UserInSchema(Schema):
    email = fields.Email(required=True)
    password = fields.String(required=True, load_only=True,
                             validate=[validate.Length(min=MIN_PASSWORD_LENGTH, max=1000), storable])
    display_name = text(200)
    platform_admin = strict_boolean(load_default=False)


class UserSchema(Schema):
    id = fields.Integer(required=True)
    email = fields.String(required=True)
    display_name = fields.String(required=True)
    platform_admin = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class RoleSchema(Schema):
    organisation_id = fields.Integer(required=True)
    role = fields.String(required=True)
    fund_ids = fields.List(fields.Integer(), required=True)


class MeSchema(Schema):
    user_id = fields.Integer(required=True)
    email = fields.String(required=True)
    platform_admin = fields.Boolean(required=True)
    roles = fields.List(fields.Nested(RoleSchema), required=True)


@sign_in_blp.route("/tokens")
class Tokens(MethodView):
    @requires(Need.PUBLIC)
    @sign_in_blp.arguments(TokenInSchema())
    @sign_in_blp.response(201, TokenSchema)
    @documents_problems(sign_in_blp, 422)
    @perform("token.issue", moves_money=False, keeps_answers=False)
    def post(self, data, unit: UnitOfWork):
        """Signs in with email and password and issues an API token, shown once. Rate-limited per address.
        The answer is never kept for retries (it holds the token): an Idempotency-Key is ignored here."""
        user = find_user_by_password(unit.session, data["email"], data["password"])
        if user is None:
            raise Unauthenticated("the email or the password is wrong", field="password")
        unit.audited_user_id = user.id
        token, row = issue_token(unit.session, user.id, data["name"] or "signed in", data["days"])
        return {"token": token, "prefix": row.prefix, "name": row.name, "expires_at": row.expires_at}


@blp.route("/tokens/current")
class CurrentToken(MethodView):
    @requires(Need.SIGNED_IN)
    @blp.response(204)
    @documents_problems(blp)
    @perform("token.revoke", moves_money=False)
    def delete(self, unit: UnitOfWork):
        """Revokes the token this request was made with."""
        revoke_token(unit.session, token_prefix(bearer_token()))


@blp.route("/users")
class Users(MethodView):
    @requires(Need.PLATFORM_ADMIN)
    @blp.arguments(UserInSchema())
    @blp.response(201, UserSchema)
    @documents_problems(blp, 403, 409, 422)
    @perform("user.create", moves_money=False)
    def post(self, data, unit: UnitOfWork):
        """Creates a user (platform administrators only); organisation admins then give them a role."""
        return create_user(unit.session, **data)


@blp.route("/me")
class Me(MethodView):
    @requires(Need.SIGNED_IN)
    @blp.response(200, MeSchema)
    @documents_problems(blp)
    def get(self):
        """Who the token belongs to, and their roles."""
        principal = current_principal()
        return {"user_id": principal.user_id, "email": principal.email, "platform_admin": principal.platform_admin,
                "roles": [{"organisation_id": org, "role": role, "fund_ids": sorted(principal.funds.get(org, ()))}
                          for org, role in sorted(principal.roles.items())]}
