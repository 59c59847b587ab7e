"""Console pages: import products and stock from a file. Upload (always a dry run first), the
diff it found, then confirm; a progress bar (htmx polls the run) while a run works.

Managers and admins only, as ``POST /api/v1/products/import``; the runs are the same import
runs and jobs as the API's (storekeeper.imports).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.api.deps import DatabaseDep
from storekeeper.errors import DomainError
from storekeeper.imports import parsing, service
from storekeeper.inventory import warehouses
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Staff = Annotated[Principal, Depends(allowed(STAFF))]
RunId = Annotated[int, Path(ge=1, le=2**53)]

_FIELD_OF_CODE = {
    "unreadable_file": "file",
    "unknown_columns": "file",
    "repeated_columns": "file",
    "missing_columns": "file",
    "stock_mode_required": "stock",
    "invalid_stock_mode": "stock",
    "quantity_required": "stock",
    "warehouse_required": "warehouse",
    "unknown_warehouse": "warehouse",
}
"""Which form field an error of the upload belongs next to."""


def _form(
    request: Request,
    principal: Principal,
    db: Any,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    with db.reading() as session:
        codes = [(w.code, w.name) for w in warehouses.list_warehouses(session)]
    return render(
        request,
        "imports/index.html",
        principal,
        status_code=status_code,
        title="Import",
        warehouses=codes,
        values=values,
        errors=errors,
        columns=parsing.COLUMNS,
    )


@router.get("/import")
def index(request: Request, principal: Staff, db: DatabaseDep) -> Response:
    """The upload form."""
    return _form(request, principal, db, values={}, errors={})


@router.post("/import")
def upload(
    request: Request,
    principal: Staff,
    db: DatabaseDep,
    file: Annotated[UploadFile | None, File()] = None,
    stock: Annotated[str, Form(max_length=8)] = "",
    warehouse: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Check the file as a dry run (a job); its page shows the progress, then the diff."""
    values = {"stock": stock, "warehouse": warehouse}
    content = file.file.read() if file is not None else b""
    if file is None or not file.filename:
        return _form(
            request, principal, db, values=values, errors={"file": "choose a file"}, status_code=422
        )
    try:
        with db.transaction() as session:
            run_id = service.submit(
                session,
                content=content,
                filename=file.filename,
                stock_mode=stock or None,  # type: ignore[arg-type]
                warehouse=warehouse or None,
                dry_run=True,
                actor_id=str(principal.user_id),
                as_job=True,
            )
    except DomainError as exc:
        field = _FIELD_OF_CODE.get(exc.code, "file")
        return _form(
            request, principal, db, values=values, errors={field: exc.detail}, status_code=422
        )
    return RedirectResponse(f"/import/{run_id}", status_code=303)


@router.get("/import/{run_id}")
def show(request: Request, principal: Staff, db: DatabaseDep, run_id: RunId) -> Response:
    """A run: its progress bar while it works (htmx polls this), then what it found or did."""
    with db.reading() as session:
        run = service.get(session, run_id=run_id)
    fragment = request.headers.get("HX-Request") == "true"
    return render(
        request,
        "imports/_run.html" if fragment else "imports/run.html",
        principal,
        title=f"Import {run.id}",
        run=run,
        finished=run.status in service.FINISHED,
        counts=run.result.get("counts", {}),
        rows=run.result.get("rows", {}),
    )


@router.post("/import/{run_id}/confirm")
def confirm(principal: Staff, db: DatabaseDep, run_id: RunId) -> Response:
    """Import the file of a dry run (a job); on to its page."""
    with db.transaction() as session:
        new_id = service.confirm(session, run_id=run_id, actor_id=str(principal.user_id))
    return RedirectResponse(f"/import/{new_id}", status_code=303)
