"""Caseload review: everyone on my caseload red/amber/green over the last 14 days (the rule is
on the page), the alerts behind each rating counted by kind, last heard, open alerts by tier and
the few most urgent of them ("and N more" links to the queue filtered to the person). Printed,
it is the review sheet: reds first."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from em_service.console import queries
from em_service.console.web import PREFIX, ConsoleOfficer, ago, now, render

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/review")
def caseload_review(request: Request, caller: ConsoleOfficer) -> Response:
    t = now(request)
    with request.app.state.store.read() as session:
        rows = queries.review(session, people=sorted(caller.caseload), now=t)
        session.expunge_all()
    counts = {c: sum(1 for r in rows if r.rag == c) for c in ("red", "amber", "green")}
    return render(
        request,
        "review.html",
        {
            "title": "Caseload review",
            "rows": rows,
            "counts": counts,
            "rule": queries.RAG_RULE,
            "days": queries.REVIEW_DAYS,
            "since": t - timedelta(days=queries.REVIEW_DAYS),
            "now": t,
            "ago": lambda ts: ago(ts, t),
        },
    )
