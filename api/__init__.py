"""The Flask edge of FundLedger: the app factory, REST resources, error mapping and CLI commands."""

from api.app import create_app

__all__ = ["create_app"]
