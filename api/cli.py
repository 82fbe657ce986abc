"""`flask ledger …` commands: migrate, load the demo, seal, verify."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from ledger.demo import load_demo_if_empty
from ledger.integrity import seal_pending, verify
from ledger.schema import migrate


def _database():
    return current_app.extensions["ledger_db"]


ledger_group = AppGroup("ledger", help="Maintain the ledger's database.")


@ledger_group.command("migrate", help="Upgrade the schema to the newest Alembic revision.")
def migrate_command() -> None:
    migrate(_database().engine)
    click.echo("schema is up to date")


@ledger_group.command("load-demo", help="Load the demo foundation when the database is empty.")
def load_demo_command() -> None:
    organisation_id = load_demo_if_empty(_database())
    click.echo(f"demo loaded as organisation {organisation_id}" if organisation_id
               else "database already holds data; demo not loaded")


@ledger_group.command("setup", help="Migrate, then load the demo if the database is empty.")
@click.pass_context
def setup_command(context: click.Context) -> None:
    context.invoke(migrate_command)
    context.invoke(load_demo_command)


@ledger_group.command("seal", help="Seal every committed entry not sealed yet.")
def seal_command() -> None:
    click.echo(f"sealed {seal_pending(_database())} batch(es)")


@ledger_group.command("verify", help="Recompute every cached total and re-hash every sealed batch.")
@click.option("--organisation", "organisation_id", type=int, default=None, help="Only this organisation.")
def verify_command(organisation_id: int | None) -> None:
    with _database().read() as session:
        problems = verify(session, organisation_id)
    for problem in problems:
        click.echo(str(problem), err=True)
    if problems:
        raise SystemExit(f"integrity check failed: {len(problems)} problem(s)")
    click.echo("ledger verified: every cached total matches its postings, every sealed batch its hash")


def register(app: Flask) -> None:
    app.cli.add_command(ledger_group)
