"""Requests racing through the API: the database, not luck, keeps refunds within the gift and a grant
approved once. On SQLite writers queue for the write lock; on PostgreSQL they really run side by side."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from ledger.db.models import Entry, Refund, User

DAY = "2026-11-20"


def race(count: int, send) -> list:
    barrier, answers = threading.Barrier(count), []

    def run(index: int) -> None:
        barrier.wait()
        answers.append(send(index))

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_racing_refunds_never_pass_the_gift(world):
    donation = world.call("org_admin", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": world.fund, "amount_minor": 10_000, "currency": "CNY", "channel": "bank",
        "received_on": DAY}).json

    answers = race(6, lambda _: world.call(
        "org_admin", "POST", world.url(f"/donations/{donation['id']}/refunds"), key=uuid.uuid4().hex,
        json={"amount_minor": 3_000, "refunded_on": DAY}))

    assert sorted(answer.status_code for answer in answers) == [201, 201, 201, 422, 422, 422]
    with world.db.read() as session:
        assert session.scalar(select(func.sum(Refund.amount_minor)).where(
            Refund.donation_id == donation["id"])) == 9_000
    assert world.call("org_admin", "GET", world.url(f"/donations/{donation['id']}")).json["refunded_minor"] == 9_000


def test_racing_approvals_approve_a_grant_once(world):
    world.call("org_admin", "POST", world.url("/donations"), key=uuid.uuid4().hex, json={
        "fund_id": world.fund, "amount_minor": 100_000, "currency": "CNY", "channel": "bank", "received_on": DAY})
    grant = world.call("fund_manager", "POST", world.url("/grants"), json={
        "fund_id": world.fund, "amount_minor": 5_000, "currency": "CNY", "payee": "p", "purpose": "p",
        "category": "charitable_activities"}).json

    approvers = ("org_admin", "second_admin", "platform_admin", "org_admin", "second_admin", "platform_admin")
    answers = race(6, lambda index: world.call(approvers[index], "POST",
                                               world.url(f"/grants/{grant['id']}/approvals"), json={},
                                               key=uuid.uuid4().hex))

    assert sorted(answer.status_code for answer in answers) == [200, 409, 409, 409, 409, 409]
    with world.db.read() as session:
        assert session.scalar(select(func.count()).where(Entry.organisation_id == world.org,
                                                         Entry.kind == "grant_approved")) == 1


def test_racing_creations_of_one_name_answer_409_not_500(world):
    funds = race(5, lambda _: world.call("org_admin", "POST", world.url("/funds"), json={
        "code": "SAME", "name": "同名基金", "kind": "project", "restricted": False}))
    members = race(5, lambda _: world.call("org_admin", "POST", world.url("/members"), json={
        "email": world.db.write(lambda session: session.get(User, world.users["spare"]).email),
        "role": "auditor"}))

    assert sorted(answer.status_code for answer in funds) == [201, 409, 409, 409, 409]
    assert {answer.status_code for answer in members} == {200}
