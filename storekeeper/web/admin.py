"""Console pages: admin (users, device tokens, the audit log), for admins only.

Each view calls the same service functions as the matching admin route of
``storekeeper.accounts.api`` (``/users``, ``/devices``, ``/audit``) and reads its forms with the
same schemas. A device token is shown once, in the answer to the form that issued it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import Field, StringConstraints
from sqlalchemy.orm import Session

from storekeeper.accounts import audit, credentials, devices, users
from storekeeper.accounts.domain import ADMINS, Principal, Role
from storekeeper.accounts.schemas import DeviceCreate, PasswordSet, UserCreate, UserUpdate
from storekeeper.api.deps import DatabaseDep, SettingsDep, SigningKeyDep
from storekeeper.api.downloads import csv_response
from storekeeper.errors import Conflict, DomainError
from storekeeper.ids import MAX_ID
from storekeeper.inventory import warehouses as inventory_warehouses
from storekeeper.web.auth import qr_svg
from storekeeper.web.forms import Blank, form_data, form_lists, validate
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(allowed(ADMINS))]
Fields = Annotated[dict[str, str], Depends(form_data)]
Lists = Annotated[dict[str, list[str]], Depends(form_lists)]

PAGE = 50
CSV_LIMIT = 10_000
"""The most rows one CSV export holds (the audit log grows without bound)."""

ROLES = [role for role in Role if role is not Role.DEVICE]
"""The roles an admin gives (devices get tokens on the devices page)."""

_FIELD_OF_CODE = {
    "weak_password": "password",
    "duplicate_email": "email",
    "unknown_warehouse": "warehouses",
    "last_admin": "role",
    "is_a_device": "form",
}
"""Which form field a service's error is about."""


Email = Annotated[str, StringConstraints(max_length=254)]
AuditKind = Annotated[str, StringConstraints(max_length=32)]
EventId = Annotated[int, Field(ge=1, le=MAX_ID)]
# Constraints sit on the inner type: on the outer one they would be applied to a blank's None.
RoleFilter = Annotated[Literal["admin", "manager", "clerk", "customer"] | None, Blank, Query()]
ActiveFilter = Annotated[Literal["yes", "no"] | None, Blank, Query()]
Format = Annotated[Literal["html", "csv"] | None, Blank, Query(alias="format")]


def _status(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _in_words(errors: Mapping[str, str]) -> dict[str, str]:
    """Schema problems per form field (``warehouses.0`` is the warehouses field)."""
    words: dict[str, str] = {}
    for field, message in errors.items():
        name = field.split(".", 1)[0]
        if message == "Field required":
            message = "fill this in"
        words.setdefault(name, message.removeprefix("String "))
    return words


def _query(**params: object) -> str:
    """``?a=1&b=2`` of the params that are set (for paging links that keep the filter)."""
    kept = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


def _warehouses(db: DatabaseDep) -> list[dict[str, str]]:
    with db.reading() as session:
        return [
            {"code": w.code, "name": w.name} for w in inventory_warehouses.list_warehouses(session)
        ]


# Users --------------------------------------------------------------------------------------


def _user_row(user: Any) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "role": user.role,
        "warehouses": list(user.warehouses or []),
        "is_active": user.is_active,
        "two_factor": user.totp_enabled,
        "created_at": user.created_at,
    }


@router.get("/admin/users")
def users_page(
    request: Request,
    principal: Admin,
    db: DatabaseDep,
    role: RoleFilter = None,
    active: ActiveFilter = None,
    after: Annotated[Email | None, Blank, Query()] = None,
    fmt: Format = None,
) -> Response:
    """Accounts (not devices), oldest first, by role and active state; a page or a CSV."""
    chosen = Role(role) if role else None
    is_active = None if active is None else active == "yes"
    with db.reading() as session:
        found = users.list_(
            session,
            role=chosen,
            is_active=is_active,
            after=None if fmt == "csv" else after,
            limit=None if fmt == "csv" else PAGE + 1,
        )
        rows = [_user_row(u) for u in found]
    if fmt == "csv":
        return csv_response(
            "users.csv",
            ["email", "role", "warehouses", "active", "two_factor", "created_at"],
            (
                [
                    r["email"],
                    r["role"],
                    " ".join(r["warehouses"]),
                    "yes" if r["is_active"] else "no",
                    "on" if r["two_factor"] else "off",
                    r["created_at"].isoformat(),
                ]
                for r in rows
            ),
        )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(
        request,
        "admin/users.html",
        principal,
        title="Users",
        rows=rows,
        roles=ROLES,
        role=role or "",
        active=active or "",
        after=after,
        next_url=_query(role=role, active=active, after=rows[-1]["email"]) if more else None,
        first_url=_query(role=role, active=active),
        csv_url=_query(role=role, active=active, format="csv"),
    )


@router.get("/admin/users/new")
def new_user_form(request: Request, principal: Admin, db: DatabaseDep) -> Response:
    """The form for a new account."""
    return render(
        request,
        "admin/user_new.html",
        principal,
        title="New user",
        roles=ROLES,
        warehouses=_warehouses(db),
        values={"role": Role.CLERK.value, "warehouses": []},
        errors={},
    )


@router.post("/admin/users/new")
def create_user(
    request: Request, principal: Admin, db: DatabaseDep, fields: Fields, lists: Lists
) -> Response:
    """Create an account (as ``POST /users``); errors are shown next to their field."""
    values: dict[str, Any] = {
        "email": fields.get("email", ""),
        "role": fields.get("role", ""),
        "warehouses": [c for c in lists.get("warehouses", []) if c],
    }
    body, problems = validate(
        UserCreate, {**values, "password": fields.get("password", ""), "email": values["email"]}
    )
    errors, status = _in_words(problems), 422
    if body is not None:
        try:
            with db.transaction() as session:
                user = users.create_user(
                    session,
                    email=body.email,
                    password=body.password,
                    role=body.role,
                    warehouses=body.warehouses,
                    actor_id=principal.user_id,
                )
                user_id = user.id
        except DomainError as exc:
            errors, status = {_FIELD_OF_CODE.get(exc.code, "form"): exc.detail}, _status(exc)
        else:
            return RedirectResponse(f"/admin/users/{user_id}?done=created", status_code=303)
    return render(
        request,
        "admin/user_new.html",
        principal,
        status_code=status,
        title="New user",
        roles=ROLES,
        warehouses=_warehouses(db),
        values=values,
        errors=errors,
    )


Done = Annotated[
    Literal["created", "saved", "disabled", "enabled", "password"] | None, Blank, Query()
]


def _user_page(
    request: Request,
    principal: Principal,
    db: DatabaseDep,
    user_id: uuid.UUID,
    *,
    status_code: int = 200,
    done: str | None = None,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Response:
    with db.reading() as session:
        user = _user_row(users.get_or_raise(session, user_id=user_id))
    if user["role"] == Role.DEVICE.value:
        return RedirectResponse("/admin/devices", status_code=303)
    return render(
        request,
        "admin/user.html",
        principal,
        status_code=status_code,
        title=user["email"],
        user=user,
        roles=ROLES,
        warehouses=_warehouses(db),
        values=values or {"role": user["role"], "warehouses": user["warehouses"]},
        errors=errors or {},
        done=done,
        is_self=user["id"] == principal.user_id,
    )


@router.get("/admin/users/{user_id}")
def user_page(
    request: Request, principal: Admin, db: DatabaseDep, user_id: uuid.UUID, done: Done = None
) -> Response:
    """One account: its role and warehouses, enable/disable, a new password."""
    return _user_page(request, principal, db, user_id, done=done)


def _update(
    request: Request,
    principal: Principal,
    db: DatabaseDep,
    user_id: uuid.UUID,
    data: Mapping[str, Any],
    done: str,
    error_field: str | None = None,
) -> Response:
    body, problems = validate(UserUpdate, data)
    errors, status = _in_words(problems), 422
    if body is not None:
        try:
            with db.transaction() as session:
                users.update(
                    session,
                    user_id=user_id,
                    role=body.role,
                    is_active=body.is_active,
                    warehouses=body.warehouses,
                    actor_id=principal.user_id,
                )
        except DomainError as exc:
            errors, status = {_FIELD_OF_CODE.get(exc.code, "form"): exc.detail}, _status(exc)
        else:
            return RedirectResponse(f"/admin/users/{user_id}?done={done}", status_code=303)
    values = {"role": data.get("role", ""), "warehouses": data.get("warehouses") or []}
    if error_field is not None:  # the enable/disable button: its errors go next to it
        errors, values = {error_field: "; ".join(errors.values())}, {}
    return _user_page(
        request, principal, db, user_id, status_code=status, errors=errors, values=values
    )


@router.post("/admin/users/{user_id}")
def update_user(
    request: Request,
    principal: Admin,
    db: DatabaseDep,
    user_id: uuid.UUID,
    fields: Fields,
    lists: Lists,
) -> Response:
    """Change the role and the warehouses (as ``PATCH /users/{id}``)."""
    data = {
        "role": fields.get("role", ""),
        "warehouses": [c for c in lists.get("warehouses", []) if c],
    }
    return _update(request, principal, db, user_id, data, "saved")


@router.post("/admin/users/{user_id}/active")
def set_active(
    request: Request, principal: Admin, db: DatabaseDep, user_id: uuid.UUID, fields: Fields
) -> Response:
    """Disable (every session ends) or enable the account (as ``PATCH /users/{id}``)."""
    active = fields.get("is_active", "")
    done = "enabled" if active == "true" else "disabled"
    return _update(request, principal, db, user_id, {"is_active": active}, done, "is_active")


@router.post("/admin/users/{user_id}/password")
def reset_password(
    request: Request, principal: Admin, db: DatabaseDep, user_id: uuid.UUID, fields: Fields
) -> Response:
    """Set a new password (as ``POST /users/{id}/password``); every session of the user ends."""
    body, problems = validate(PasswordSet, {"new_password": fields.get("new_password", "")})
    errors, status = _in_words(problems), 422
    if body is not None:
        try:
            with db.transaction() as session:
                credentials.reset_by_admin(
                    session,
                    user_id=user_id,
                    new_password=body.new_password,
                    actor_id=principal.user_id,
                )
        except DomainError as exc:
            errors, status = {"new_password": exc.detail}, _status(exc)
        else:
            return RedirectResponse(f"/admin/users/{user_id}?done=password", status_code=303)
    return _user_page(request, principal, db, user_id, status_code=status, errors=errors)


# Devices ------------------------------------------------------------------------------------


def _device_row(device: Any) -> dict[str, Any]:
    return {
        "id": device.id,
        "label": device.label,
        "scope": device.scope,
        "purpose": device.purpose,
        "created_at": device.created_at,
        "expires_at": device.expires_at,
        "revoked_at": device.revoked_at,
        "revoked_reason": device.revoked_reason,
    }


def _devices_page(
    request: Request,
    principal: Principal,
    db: DatabaseDep,
    *,
    before: uuid.UUID | None = None,
    done: str | None = None,
    status_code: int = 200,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
) -> Response:
    with db.reading() as session:
        rows = [
            _device_row(d) for d in devices.list_devices(session, before=before, limit=PAGE + 1)
        ]
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(
        request,
        "admin/devices.html",
        principal,
        status_code=status_code,
        title="Devices",
        rows=rows,
        before=before,
        done=done,
        warehouses=_warehouses(db),
        errors=errors or {},
        values=values or {},
        next_url=_query(before=rows[-1]["id"]) if more else None,
    )


@router.get("/admin/devices")
def devices_page(
    request: Request,
    principal: Admin,
    db: DatabaseDep,
    before: Annotated[uuid.UUID | None, Blank, Query()] = None,
    done: Annotated[Literal["revoked"] | None, Blank, Query()] = None,
    fmt: Format = None,
) -> Response:
    """Device tokens newest first (never the tokens themselves) and the form to issue one."""
    if fmt == "csv":
        with db.reading() as session:
            rows = [_device_row(d) for d in devices.list_devices(session)]
        return csv_response(
            "devices.csv",
            ["label", "scope", "purpose", "created_at", "expires_at", "revoked_at"],
            (
                [
                    r["label"],
                    r["scope"],
                    r["purpose"] or "",
                    r["created_at"].isoformat(),
                    r["expires_at"].isoformat(),
                    r["revoked_at"].isoformat() if r["revoked_at"] else "",
                ]
                for r in rows
            ),
        )
    return _devices_page(request, principal, db, before=before, done=done)


@router.post("/admin/devices")
def issue_device(
    request: Request,
    principal: Admin,
    db: DatabaseDep,
    settings: SettingsDep,
    key: SigningKeyDep,
    fields: Fields,
) -> Response:
    """Issue a device token (as ``POST /devices``) and show it, once, as text and a QR code."""
    values = {k: fields.get(k, "") for k in ("label", "warehouse", "purpose")}
    data = {
        "label": values["label"],
        "scope": f"warehouse:{values['warehouse']}" if values["warehouse"] else "",
        "purpose": values["purpose"] or None,
    }
    body, problems = validate(DeviceCreate, data)
    errors = _in_words(problems)
    if "scope" in errors:
        errors["warehouse"] = (
            "choose a warehouse" if not values["warehouse"] else "not a warehouse code"
        )
    if not values["purpose"]:
        # The API still takes none (as old tokens); every new device gets one.
        errors["purpose"] = "choose what the device is for"
    if body is None or errors:
        return _devices_page(request, principal, db, status_code=422, errors=errors, values=values)
    with db.transaction() as session:
        created = devices.create_device(
            session,
            settings,
            key=key,
            label=body.label,
            scope=body.scope,
            actor_id=principal.user_id,
            purpose=body.purpose,
        )
        device, token = _device_row(created.device), created.token
    return render(
        request,
        "admin/device_issued.html",
        principal,
        title="Device token issued",
        device=device,
        token=token,
        qr=qr_svg(token),
    )


@router.post("/admin/devices/{device_id}/revoke")
def revoke_device(principal: Admin, db: DatabaseDep, device_id: uuid.UUID) -> Response:
    """Revoke a device's token at once (as ``DELETE /devices/{id}``)."""
    with db.transaction() as session:
        devices.revoke_device(session, device_id=device_id, actor_id=principal.user_id)
    return RedirectResponse("/admin/devices?done=revoked", status_code=303)


# Audit log ----------------------------------------------------------------------------------


def _start_of(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time.min, tzinfo=UTC)


def _end_of(day: date | None) -> datetime | None:
    """The start of the day after ``day`` (none after the last day a date can be)."""
    return None if day is None or day == date.max else _start_of(day + timedelta(days=1))


def _detail(detail: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted((detail or {}).items()) if v is not None)


@router.get("/admin/audit")
def audit_page(
    request: Request,
    principal: Admin,
    db: DatabaseDep,
    kind: Annotated[AuditKind | None, Blank, Query()] = None,
    user: Annotated[Email | None, Blank, Query()] = None,
    since: Annotated[date | None, Blank, Query(alias="from")] = None,
    until: Annotated[date | None, Blank, Query(alias="to")] = None,
    before: Annotated[EventId | None, Blank, Query()] = None,
    fmt: Format = None,
) -> Response:
    """Security events newest first (as ``GET /audit``), by kind, user (e-mail) and days."""
    errors: dict[str, str] = {}
    if since and until and until < since:
        errors["to"] = "the last day comes before the first"
    rows: list[dict[str, Any]] = []
    with db.reading() as session:
        user_id = _user_id(session, user)
        if user and user_id is None:
            errors["user"] = "no account has this e-mail"
        if not errors:
            rows = list(
                _events(
                    session,
                    kind=kind,
                    user_id=user_id,
                    since=_start_of(since),
                    until=_end_of(until),
                    before=before,
                    limit=CSV_LIMIT if fmt == "csv" else PAGE + 1,
                )
            )
    filters = {
        "kind": kind,
        "user": user,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
    }
    if fmt == "csv":
        return csv_response(
            "audit.csv",
            ["id", "at", "kind", "user", "actor", "address", "detail"],
            (
                [
                    r["id"],
                    r["at"].isoformat(),
                    r["kind"],
                    r["user"] or "",
                    r["actor"] or "",
                    r["address"] or "",
                    r["detail"],
                ]
                for r in rows
            ),
        )
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return render(
        request,
        "admin/audit.html",
        principal,
        # A filter naming no account is said next to the field; 200, so htmx swaps it in.
        title="Audit log",
        rows=rows,
        kinds=audit.KINDS,
        filters=filters,
        errors=errors,
        before=before,
        next_url=_query(**filters, before=rows[-1]["id"]) if more else None,
        first_url=_query(**filters),
        csv_url=_query(**filters, before=before, format="csv"),
    )


def _user_id(session: Session, user: str | None) -> uuid.UUID | None:
    """The account a filter names: by e-mail, or by id (as the API's ``user_id``)."""
    if not user:
        return None
    try:
        return uuid.UUID(user)
    except ValueError:
        return users.id_by_email(session, email=user)


def _events(
    session: Session,
    *,
    kind: str | None,
    user_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    before: int | None,
    limit: int,
) -> Iterator[dict[str, Any]]:
    """Up to ``limit`` events, fetched a service page at a time, with e-mails for the ids."""
    left = limit
    while left > 0:
        page = audit.list_(
            session,
            kind=kind,
            user_id=user_id,
            since=since,
            until=until,
            before=before,
            limit=min(left, audit.MAX_PAGE),
        )
        ids = {i for e in page for i in (e.user_id, e.actor_id) if i is not None}
        emails = users.emails_by_id(session, user_ids=ids)
        for event in page:
            yield {
                "id": event.id,
                "at": event.at,
                "kind": event.kind,
                "user": emails.get(event.user_id) if event.user_id else None,
                "user_id": event.user_id,
                "actor": emails.get(event.actor_id) if event.actor_id else None,
                "address": event.address,
                "detail": _detail(event.detail),
            }
        if len(page) < min(left, audit.MAX_PAGE):
            return
        left -= len(page)
        before = page[-1].id
