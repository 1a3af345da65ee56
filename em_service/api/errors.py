"""Every error is JSON ``{"detail": "…"}`` with a 4xx status (an uncaught exception: a bare 500
that names nothing of it); the shared OpenAPI responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException


class ErrorOut(BaseModel):
    """What went wrong, in one human-readable sentence."""

    detail: str = Field(examples=["query.from: Input should have timezone info"])


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    messages = [
        f"{_where(tuple(e.get('loc', ())))}: {e.get('msg', 'invalid')}" for e in exc.errors()
    ]
    return JSONResponse({"detail": "; ".join(messages) or "invalid request"}, status_code=422)


_UNPARSABLE = "There was an error parsing the body"


async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 400 and exc.detail == _UNPARSABLE:  # e.g. a body that is not UTF-8
        return JSONResponse({"detail": "body: not valid JSON (UTF-8 text)"}, status_code=422)
    return JSONResponse(
        {"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


async def _internal(_request: Request, _exc: Exception) -> JSONResponse:
    """An uncaught exception (Starlette's ServerErrorMiddleware logs it and re-raises it to the
    server): the client learns nothing of it."""
    return JSONResponse({"detail": "Internal server error"}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers that turn validation and HTTP errors, and uncaught exceptions,
    into ``ErrorOut``."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` documenting ``codes`` with :class:`ErrorOut` bodies."""
    text = {
        400: "Bad request",
        401: "No valid bearer token",
        403: "The token's role may not do this",
        404: "Not found (or not on your caseload)",
        409: "Conflicts with the current state",
        413: "Body too large",
        422: "Invalid parameters or body",
        503: "A dependency (Kafka) did not answer",
    }
    return {code: {"model": ErrorOut, "description": text[code]} for code in codes}
