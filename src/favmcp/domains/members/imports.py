"""Two-step member import: preview validates and stages every row; commit creates the valid ones once."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_

from favmcp.core.contact import normalise_phone
from favmcp.core.errors import FavError
from favmcp.core.ids import new_id
from favmcp.domains.members import service
from favmcp.domains.members.models import ImportStatus, Member, MemberImport, MemberNote, MemberStatus, NoteAuthor
from favmcp.domains.members.schemas import (
    CreateMemberInput,
    ImportPreview,
    ImportResult,
    ImportRow,
    PreviewImportInput,
    RowProblem,
)
from favmcp.registry.context import ToolContext

OPT_INS = {"email_opt_in": "email", "sms_opt_in": "sms", "whatsapp_opt_in": "whatsapp"}


def _validate(row: ImportRow, source: str, country: str | None) -> tuple[dict[str, Any] | None, list[RowProblem]]:
    """A row as create_member arguments (the phone as E.164, a national one read in `country`), or its problems."""
    tags = row.tags.split(",") if isinstance(row.tags, str) else (row.tags or [])
    consent = [{"channel": ch, "granted": getattr(row, f)} for f, ch in OPT_INS.items() if getattr(row, f) is not None]
    candidate = {
        "name": row.name or "",
        "email": row.email,
        "phone": row.phone,
        "tags": [t for t in tags if t.strip()],
        "source": source,
        "consent": consent,
        "consent_source": "import",
        **({"lifecycle": row.lifecycle.strip().lower()} if row.lifecycle else {}),
    }
    try:
        valid = CreateMemberInput.model_validate(candidate)
    except ValidationError as exc:
        return (
            None,
            [
                RowProblem(row=0, field=".".join(str(p) for p in e["loc"]) or None, message=e["msg"])
                for e in exc.errors()
            ],
        )
    data = valid.model_dump(mode="json", exclude={"idempotency_key"})
    if valid.phone is not None:
        try:
            data["phone"] = normalise_phone(valid.phone, country)
        except ValueError as exc:
            return None, [RowProblem(row=0, field="phone", message=str(exc))]
    data["notes"] = row.notes
    return data, []


async def preview(ctx: ToolContext, args: PreviewImportInput) -> ImportPreview:
    errors: list[RowProblem] = []
    duplicates: list[RowProblem] = []
    staged: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    candidates: list[tuple[int, dict[str, Any]]] = []
    country = await service.phone_country(ctx, *(row.phone for row in args.rows))
    for number, row in enumerate(args.rows, start=1):
        data, problems = _validate(row, args.source, country)
        errors += [p.model_copy(update={"row": number}) for p in problems]
        if data is None:
            continue
        clash = next((seen[k] for k in (data["email"], data["phone"]) if k and k in seen), None)
        if clash is not None:
            duplicates.append(
                RowProblem(row=number, message="same email or phone as an earlier row", duplicate_of_row=clash)
            )
            continue
        for key in (data["email"], data["phone"]):
            if key:
                seen[key] = number
        candidates.append((number, data))
    existing = await _existing_contacts(ctx, [k for _, d in candidates for k in (d["email"], d["phone"]) if k])
    for number, data in candidates:
        owner = next((existing[k] for k in (data["email"], data["phone"]) if k and k in existing), None)
        if owner is not None:
            duplicates.append(
                RowProblem(
                    row=number, message="an active member already has this email or phone", existing_member_id=owner
                )
            )
            continue
        staged.append({"row": number, **data})
    report = {"errors": [e.model_dump() for e in errors], "duplicates": [d.model_dump() for d in duplicates]}
    staged_import = MemberImport(
        id=new_id("imp"),
        workspace_id=ctx.workspace_id,
        rows=staged,
        report=report,
        created_by=ctx.caller.user_id,
        created_at=ctx.now,
    )
    ctx.db.add(staged_import)
    ctx.record_change(import_id=staged_import.id, rows=len(args.rows), valid=len(staged))
    return ImportPreview(
        import_id=staged_import.id,
        total_rows=len(args.rows),
        valid_rows=len(staged),
        errors=errors,
        duplicates=duplicates,
        message=f"{len(staged)} of {len(args.rows)} rows will be imported; call commit_member_import to apply.",
    )


async def _existing_contacts(ctx: ToolContext, keys: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        stmt = ctx.db.select(
            Member,
            col(Member.status) == MemberStatus.active,
            or_(col(Member.email).in_(chunk), col(Member.phone).in_(chunk)),
        )
        for m in await ctx.db.all(stmt):
            found.update({k: m.id for k in (m.email, m.phone) if k})
    return found


async def commit(ctx: ToolContext, staged: MemberImport) -> ImportResult:
    created: list[str] = []
    skipped = [RowProblem.model_validate(p) for p in staged.report.get("duplicates", [])]
    skipped += [RowProblem.model_validate(p) for p in staged.report.get("errors", [])]
    for data in staged.rows:
        member = Member(
            id=new_id("mem"),
            workspace_id=ctx.workspace_id,
            name=data["name"],
            email=data["email"],
            phone=data["phone"],
            source=data["source"],
            lifecycle=data["lifecycle"],
            created_at=ctx.now,
            updated_at=ctx.now,
            last_activity_at=ctx.now,
        )
        try:
            await service.ensure_contact_free(ctx, member.email, member.phone, None)
            await service.save_member(ctx, member)
        except (FavError, IntegrityError):
            skipped.append(RowProblem(row=data["row"], message="an active member now has this email or phone"))
            continue
        await service.attach(ctx, member.id, data["tags"])
        for consent in data["consent"]:
            await service.add_consent(ctx, member.id, consent["channel"], consent["granted"], "import")
        if data.get("notes"):
            ctx.db.add(
                MemberNote(
                    id=new_id("note"),
                    workspace_id=ctx.workspace_id,
                    member_id=member.id,
                    body=data["notes"],
                    author=NoteAuthor.imported,
                    created_at=ctx.now,
                )
            )
        service.record_event(ctx, member.id, "created", "Imported", {"import_id": staged.id})
        created.append(member.id)
    return ImportResult(
        import_id=staged.id,
        created=len(created),
        created_member_ids=created,
        skipped=sorted(skipped, key=lambda p: p.row),
        committed_at=ctx.now,
    )


async def forget(ctx: ToolContext, email: str | None, phone: str | None) -> None:
    """Erasure reaches import staging too: staged rows with the person's email or phone are dropped."""
    contacts = {c for c in (email, phone) if c}
    if not contacts:
        return
    for staged in await ctx.db.all(ctx.db.select(MemberImport, col(MemberImport.status) == ImportStatus.previewed)):
        kept = [r for r in staged.rows if not contacts & {r.get("email"), r.get("phone")}]
        if len(kept) != len(staged.rows):
            await ctx.db.update(MemberImport, col(MemberImport.id) == staged.id, values={"rows": kept})
