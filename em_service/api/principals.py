"""``/api/v1/me`` (anyone with a token) and ``/api/v1/caseloads/{name}`` (admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from em_service.api.deps import Admin, AnyCaller, StoreDep, not_found
from em_service.api.errors import responses
from em_service.api.schemas import CaseloadIn, CaseloadOut, MeOut
from em_service.store import tokens

router = APIRouter(prefix="/api/v1", tags=["principals"])
PrincipalName = Annotated[str, Path(min_length=1, max_length=100, description="Principal name")]


@router.get("/me", response_model=MeOut, summary="Who this token is", responses=responses(401))
def me(caller: AnyCaller) -> MeOut:
    return MeOut(name=caller.name, role=caller.role, caseload=sorted(caller.caseload))


@router.get(
    "/caseloads/{name}",
    response_model=CaseloadOut,
    summary="A principal's caseload (admin)",
    responses=responses(401, 403, 404, 422),
)
def get_caseload(caller: Admin, store: StoreDep, name: PrincipalName) -> CaseloadOut:
    with store.read() as session:
        if not tokens.principal_exists(session, name):
            raise not_found("principal")
        ids = tokens.caseload_offenders(session, principal=name)
    return CaseloadOut(name=name, offender_ids=sorted(ids))


@router.put(
    "/caseloads/{name}",
    response_model=CaseloadOut,
    summary="Replace a principal's caseload (admin; audited)",
    responses=responses(400, 401, 403, 404, 422),
)
def put_caseload(
    caller: Admin, store: StoreDep, name: PrincipalName, body: CaseloadIn
) -> CaseloadOut:
    with store.write() as session:
        if not tokens.principal_exists(session, name):
            raise not_found("principal")
        ids = tokens.set_caseload(
            session, name=name, offender_ids=body.offender_ids, actor=caller.name
        )
    return CaseloadOut(name=name, offender_ids=ids)
