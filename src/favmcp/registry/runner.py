"""The one call path: credential → workspace → scope → gate → idempotency → unit of work → commit → result."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from favmcp.auth import credentials, scopes
from favmcp.auth.credentials import Caller
from favmcp.auth.models import Role
from favmcp.auth.ratelimit import CallClass, CallLimits, class_of
from favmcp.config import Settings
from favmcp.core.clock import Clock, Random, SystemClock, SystemRandom
from favmcp.core.errors import AuditSubject, ErrorBody, ErrorCode, FavError, FieldError, forbidden, unauthenticated
from favmcp.core.ids import new_id
from favmcp.core.sealing import seal, unseal
from favmcp.core.times import format_utc
from favmcp.db.engine import Database
from favmcp.effects import approvals
from favmcp.registry import confirm
from favmcp.registry.context import ExecutionResult, ToolContext
from favmcp.registry.domain import Platform
from favmcp.registry.models import IdempotencyRecord, audit_row
from favmcp.registry.profiles import PROFILES, PUBLISHABLE, Profile
from favmcp.registry.registry import Registry
from favmcp.registry.results import CallResult
from favmcp.registry.spec import ConfirmInput, ToolSpec, WriteInput

if TYPE_CHECKING:
    from favmcp.metrics import Metrics
    from favmcp.telemetry import Telemetry

log = structlog.get_logger("favmcp.call")

T = TypeVar("T")

IDEMPOTENCY_TTL = timedelta(hours=24)
CONTROL_FIELDS = {"idempotency_key", "confirmation_token"}
WRITE_ATTEMPTS = 3
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure


@dataclass
class Trace:
    """What the runner learnt about a call on the way, for its audit row and its log line."""

    spec: ToolSpec | None = None
    subject: AuditSubject | None = None
    arguments: dict[str, Any] | None = None
    args: BaseModel | None = None
    audited: bool = False
    throttled: bool = False  # refused by the rate limits: a flood of refusals must not become a flood of audit rows
    profile: str | None = None  # the profile the call ran under, for its span
    replayed: bool = False  # answered from an idempotency record

    @property
    def args_hash(self) -> str:
        """Hashed only when an audit row needs it (most reads write none): the validated arguments, else the raw."""
        if self.args is not None:
            return args_hash(self.args)
        return _raw_hash(self.arguments) if self.arguments is not None else ""


def _error_data(body: ErrorBody) -> dict[str, Any]:
    return {"error": body.model_dump(mode="json", exclude_none=True)}


def _internal_error(request_id: str, message: str, hint: str | None = None) -> CallResult:
    body = ErrorBody(code=ErrorCode.internal_error, message=message, retryable=True, hint=hint, request_id=request_id)
    return CallResult(False, _error_data(body), request_id)


def _raw_hash(arguments: dict[str, Any]) -> str:
    """A hash of arguments that did not validate (so the audit row of a refusal still names what was sent)."""
    canonical = json.dumps({k: v for k, v in arguments.items() if k not in CONTROL_FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def args_hash(args: BaseModel) -> str:
    canonical = json.dumps(args.model_dump(mode="json", exclude=CONTROL_FIELDS), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def unstorable_text(value: Any, path: str = "") -> list[FieldError]:
    """Strings no database here can store the same way: NUL (Postgres refuses it, SQLite keeps it) and lone
    surrogates (not UTF-8). Refused up front, so bad input gets one answer on both databases."""
    if isinstance(value, str):
        if "\x00" in value:
            return [FieldError(field=path or "(arguments)", message="text may not contain NUL characters")]
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [FieldError(field=path or "(arguments)", message="text must be valid Unicode")]
        return []
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in unstorable_text(k, path) + unstorable_text(v, _join(path, k))]
    if isinstance(value, list):
        return [e for i, v in enumerate(value) for e in unstorable_text(v, _join(path, str(i)))]
    return []


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _invalid(spec: ToolSpec, errors: list[FieldError]) -> FavError:
    return FavError(
        ErrorCode.validation_failed,
        f"The arguments of {spec.name} are not valid.",
        field_errors=errors,
        hint=f"See the input schema with describe_tool name={spec.name}.",
    )


def validate(spec: ToolSpec, arguments: dict[str, Any]) -> BaseModel:
    bad_text = unstorable_text(arguments)
    if bad_text:
        raise _invalid(spec, bad_text)
    try:
        return spec.input_model.model_validate(arguments)
    except ValidationError as exc:
        raise _invalid(
            spec,
            [
                FieldError(field=".".join(str(p) for p in e["loc"]) or "(arguments)", message=e["msg"])
                for e in exc.errors()
            ],
        ) from None


class OutcomeUnknown(Exception):
    """COMMIT itself failed: the change may or may not have been stored."""


# Refusals worth an audit row even on read-only tools: someone tried what they may not do.
AUDITED_REFUSALS = {ErrorCode.forbidden, ErrorCode.unauthenticated}


def _profile(caller: Caller) -> Profile | None:
    """The profile a call runs under: the URL's (/mcp/p/<name>), else the credential's. A credential bound to one
    profile is refused on another's URL (the HTTP guard answers 403 before this; stdio has no URL)."""
    named = credentials.REQUEST_PROFILE.get()
    if named is not None and caller.profile is not None and caller.profile != named:
        raise forbidden(
            f"This credential is bound to the {caller.profile} profile, not {named}.",
            hint=f"Use it at /mcp or /mcp/p/{caller.profile}.",
        )
    named = named or caller.profile
    return PROFILES[named] if named is not None else None


class Runner:
    def __init__(
        self,
        platform: Platform,
        db: Database,
        settings: Settings,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        random: Random | None = None,
    ) -> None:
        self.platform = platform
        self.registry = registry or Registry(platform.specs)
        self.profiled = {name: self.registry.narrowed(p) for name, p in PROFILES.items()}
        self.db = db
        self.settings = settings
        self.clock = clock or SystemClock()
        self.random = random or SystemRandom()
        self._metrics: Metrics | None = None
        self.telemetry: Telemetry | None = None
        if settings.otel:  # imported only when on: a server without it never loads the OpenTelemetry SDK
            from favmcp.telemetry import Telemetry

            self.telemetry = Telemetry()
        per_minute = {
            CallClass.reads: settings.rate_limit_reads,
            CallClass.writes: settings.rate_limit_writes,
            CallClass.sends: settings.rate_limit_sends,
        }
        self.limits = CallLimits(db, per_minute, self.clock, settings.secret_key)

    @property
    def metrics(self) -> Metrics:
        """Made when first needed: a process without FAVMCP_METRICS never loads prometheus_client."""
        if self._metrics is None:
            from favmcp.metrics import Metrics

            self._metrics = Metrics()
        return self._metrics

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        credential: str | None,
        client_address: str = "local",
    ) -> CallResult:
        request_id = new_id("req")
        started = time.perf_counter()
        trace = Trace()
        try:
            spec = self.registry.get(name)
            trace.spec = spec
            result = await self._call(spec, arguments or {}, credential, client_address, request_id, trace)
        except FavError as exc:
            exc.body.request_id = request_id
            result = CallResult(False, _error_data(exc.body), request_id)
            trace.subject = trace.subject or exc.subject
        except OutcomeUnknown:
            log.exception("commit_failed", request_id=request_id, tool=name)
            result = _internal_error(
                request_id,
                "The database did not confirm the change: it may or may not have been made.",
                hint="Retry with the same idempotency_key (it is safe: a made change is replayed, not repeated); "
                "without one, check the current state first.",
            )
            trace.audited = True  # whatever was committed carries its own audit row
        except Exception:
            log.exception("tool_failed", request_id=request_id, tool=name)
            result = _internal_error(request_id, "Something went wrong on the server; nothing was changed.")
        if not trace.audited and self._worth_auditing(trace, result):
            await self._audit_apart(trace, name, result)
        if self.limits.due:
            await self.limits.reconcile()
        seconds = time.perf_counter() - started
        outcome = "ok" if result.ok else result.data["error"]["code"]
        log.info(
            "tool_call",
            request_id=request_id,
            workspace=trace.subject.workspace_id if trace.subject else None,
            tool=name,
            outcome=outcome,
            duration_ms=round(seconds * 1000, 2),
        )
        if self.settings.metrics:
            # Labelled by the registry's name only: a made-up tool name must not make a new time series.
            self.metrics.observe(trace.spec.name if trace.spec else "(unknown)", outcome, seconds)
        if self.telemetry is not None:
            self.telemetry.record(trace, result, seconds)
        return result

    async def _call(
        self,
        spec: ToolSpec,
        arguments: dict[str, Any],
        credential: str | None,
        client_address: str,
        request_id: str,
        trace: Trace,
    ) -> CallResult:
        now = self.clock.now()
        trace.arguments = arguments
        caller = await credentials.resolve(self.db, credential, now)
        if not caller.anonymous:
            trace.subject = AuditSubject(caller.workspace_id or "", caller.user_id, caller.key_id)
        profile = _profile(caller)
        trace.profile = profile.name if profile is not None else None
        registry = self.registry
        reads = self.db.read_sessions
        if profile is not None:
            registry = self.profiled[profile.name]
            registry.get(spec.name)
            if profile.read_only:
                reads = self.db.read_only_sessions
        self._authorize(spec, caller)
        try:
            subject = self.limits.subject(caller.key_id, client_address, per_address=caller.profile == PUBLISHABLE)
            self.limits.take(subject, class_of(spec))
        except FavError:
            trace.throttled = True
            raise
        args = validate(spec, arguments)
        trace.args = args
        if spec.mutating:
            prepared = None
            if spec.prepare is not None:
                ctx = self._context(reads, caller, spec, now, request_id, client_address, registry=registry)
                try:
                    prepared = await spec.prepare(ctx, args)
                finally:
                    await ctx.close_session()
            result = await self._write(
                spec, caller, args, now, request_id, client_address, trace, prepared, registry=registry
            )
        else:
            ctx = self._context(reads, caller, spec, now, request_id, client_address, registry=registry)
            try:
                data = self._dump(spec, await spec.handler(ctx, args))
                result = CallResult(True, data, request_id, images=tuple(ctx.images))
            finally:
                await ctx.close_session()
        # Its own short transaction: inside the call's it could deadlock with a call that revokes this key.
        if caller.needs_touch(now):
            async with self.db.transaction() as session:
                await credentials.touch(session, caller, now)
        return result

    async def _write(
        self,
        spec: ToolSpec,
        caller: Caller,
        args: BaseModel,
        now: datetime,
        request_id: str,
        client_address: str,
        trace: Trace,
        prepared: Any = None,
        *,
        registry: Registry,
    ) -> CallResult:
        """One transaction: the handler, its events, its audit row and its idempotency record commit together.

        A transaction Postgres chose as a deadlock victim (or could not serialise) changed nothing: it runs again
        from the start, a few times, as Postgres advises; the retry is logged, so a lock order to fix shows up."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                async with self._unit_of_work() as session:
                    ctx = self._context(
                        lambda: session, caller, spec, now, request_id, client_address, registry=registry
                    )
                    ctx.prepared = prepared
                    return await self._mutate(spec, ctx, args, trace)
            except DBAPIError as exc:
                sqlstate = getattr(exc.orig, "sqlstate", None)
                if attempt == WRITE_ATTEMPTS or sqlstate not in RETRYABLE_SQLSTATES:
                    raise
                log.warning("write_retried", request_id=request_id, tool=spec.name, sqlstate=sqlstate)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def _unit_of_work(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: rolled back on any error, committed otherwise; a failed COMMIT is OutcomeUnknown."""
        async with self.db.write_session() as session:
            transaction = await session.begin()
            try:
                yield session
            except BaseException:
                await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except Exception as exc:
                # The connection's state is unknown too: it must not serve the next call.
                await session.invalidate()
                raise OutcomeUnknown from exc

    def _context(
        self,
        open_session: Callable[[], AsyncSession],
        caller: Caller,
        spec: ToolSpec,
        now: datetime,
        request_id: str,
        client_address: str,
        approved_request_id: str | None = None,
        *,
        registry: Registry | None = None,
    ) -> ToolContext:
        """What a handler gets; a call that runs an approved request has passed the approval gate already.
        `registry`: what discovery finds, the caller's profile's tools when it has one."""
        return ToolContext(
            open_session=open_session,
            caller=caller,
            settings=self.settings,
            random=self.random,
            now=now,
            request_id=request_id,
            client_address=client_address,
            tool=spec.name,
            registry=registry or self.registry,
            platform=self.platform,
            approved_request_id=approved_request_id,
            executor=self.execute_approved,
        )

    def _authorize(self, spec: ToolSpec, caller: Caller) -> None:
        if spec.scope == scopes.PUBLIC:
            return
        if caller.anonymous:
            raise unauthenticated()
        if not scopes.grants(caller.scopes, spec.scope):
            raise forbidden(
                f"{spec.name} needs the {spec.scope} scope, which this key does not have.",
                hint="Ask an owner or admin for a key with that scope (create_api_key).",
            )

    def _dump(self, spec: ToolSpec, out: BaseModel) -> dict[str, Any]:
        return spec.output_model.model_validate(out).model_dump(mode="json")

    async def _mutate(self, spec: ToolSpec, ctx: ToolContext, args: BaseModel, trace: Trace) -> CallResult:
        assert isinstance(args, WriteInput)
        session, caller, now = ctx.session, ctx.caller, ctx.now
        digest = args_hash(args)
        credential_ref = caller.key_id or f"anonymous:{ctx.client_address}"

        if isinstance(args, ConfirmInput) and spec.preview is not None and args.confirmation_token is None:
            preview = await spec.preview(ctx, args)
            if not preview.nothing_to_do:
                token, expires = confirm.issue(
                    self.settings.secret_key, tool=spec.name, args_hash=digest, credential=credential_ref, now=now
                )
                raise FavError(
                    ErrorCode.confirmation_required,
                    f"Nothing was changed yet. {preview.summary}",
                    hint=f"To go ahead, call {spec.name} again with the same arguments and "
                    "confirmation_token set to the token in details.",
                    details={
                        "preview": preview.model_dump(mode="json"),
                        "confirmation_token": token,
                        "expires_at": format_utc(expires),
                    },
                )

        record: IdempotencyRecord | None = None
        if args.idempotency_key:
            scope = caller.key_id or "anonymous"
            replay, record = await self._claim_key(session, spec, scope, caller, args.idempotency_key, digest, now)
            if replay is not None:
                trace.audited = True  # the first outcome was audited
                trace.replayed = True
                return CallResult(not replay.is_error, self._stored(replay.response), ctx.request_id)

        if isinstance(args, ConfirmInput) and args.confirmation_token is not None:
            await confirm.spend(
                session,
                self.settings.secret_keys,
                args.confirmation_token,
                tool=spec.name,
                args_hash=digest,
                credential=credential_ref,
                workspace_id=caller.workspace_id,
                now=now,
            )

        failure: FavError | None = None
        savepoint = await session.begin_nested()
        try:
            held = await self._hold_for_approval(spec, ctx, args, digest)
            out = held if held is not None else await spec.handler(ctx, args)
            data = self._dump(spec, out)
            await ctx.deliver_events()
        except FavError as exc:
            failure = exc
            if exc.persist:
                await savepoint.commit()
            else:
                await savepoint.rollback()
                ctx.changes.clear()  # none of it happened; the audit row must not name rows that do not exist
        else:
            await savepoint.commit()

        if failure is not None:
            failure.body.request_id = ctx.request_id
            result = CallResult(False, _error_data(failure.body), ctx.request_id)
        else:
            result = CallResult(
                True, data, ctx.request_id, adopted_key=ctx.adopted_key, self_approvable=ctx.self_approvable
            )
        workspace_id = caller.workspace_id or ctx.changes.get("workspace_id")
        if workspace_id:
            session.add(
                audit_row(
                    AuditSubject(workspace_id, caller.user_id or ctx.changes.get("user_id"), caller.key_id),
                    spec.name,
                    digest,
                    "ok" if failure is None else failure.code.value,
                    ctx.request_id,
                    ctx.changes,
                    now,
                )
            )
            trace.audited = True
        if record is not None:
            record.is_error = failure is not None
            record.response = self._storable(spec, result)
        return result

    async def _hold_for_approval(self, spec: ToolSpec, ctx: ToolContext, args: BaseModel, digest: str) -> Any:
        """The approval gate: when the workspace's policy wants a person to approve this send, store the exact
        call and answer `pending_approval` (a success) instead of running it."""
        if spec.ask is None or ctx.approved_request_id is not None:
            return None
        ask = await spec.ask(ctx, args)
        policy = await approvals.policy_of(ctx.db)
        if not policy.needs_approval(ask.channel, ask.kind):
            return None
        request = await approvals.hold(
            ctx.db,
            tool=spec.name,
            arguments=args.model_dump(mode="json", exclude=CONTROL_FIELDS),
            args_hash=digest,
            ask=ask,
            requested_by_user_id=ctx.caller.user_id,
            requested_by_key_id=ctx.caller.key_id,
            now=ctx.now,
        )
        ctx.emit(approvals.ApprovalRequested(approval_id=request.id, tool=spec.name))
        ctx.record_change(approval_id=request.id)
        if policy.allow_self_approval and scopes.grants(ctx.caller.scopes, "approvals:decide"):
            ctx.self_approvable = (request.id, ask.summary)
        return spec.output_model.model_validate({"status": "pending_approval", "approval_id": request.id})

    def _system_context(self, workspace_id: str, name: str, open_session: Callable[[], AsyncSession]) -> ToolContext:
        return ToolContext(
            open_session=open_session,
            caller=Caller(workspace_id=workspace_id, scopes=tuple(scopes.role_scopes(Role.owner))),
            settings=self.settings,
            random=self.random,
            now=self.clock.now(),
            request_id=new_id("req"),
            client_address="system",
            tool=name,
            registry=self.registry,
            platform=self.platform,
        )

    async def read_system(self, workspace_id: str, name: str, work: Callable[[ToolContext], Awaitable[T]]) -> T:
        """Work the server does by itself that only reads (and may call a provider): no transaction, no lock."""
        ctx = self._system_context(workspace_id, name, self.db.read_sessions)
        try:
            await ctx.db.workspace()
            return await work(ctx)
        finally:
            await ctx.close_session()

    async def run_system(
        self, workspace_id: str, name: str, work: Callable[[ToolContext], Awaitable[T]], prepared: Any = None
    ) -> T:
        """Work the server does by itself (a scheduled job, a provider's callback) in one unit of work, as the
        system: every scope of the workspace, no user or key. Its events are delivered and, when it records a
        change, an audit row names it; a FavError undoes everything and reaches the caller."""
        async with self._unit_of_work() as session:
            ctx = self._system_context(workspace_id, name, lambda: session)
            ctx.prepared = prepared
            await ctx.db.workspace()  # a workspace that does not exist (any more) is not_found
            result = await work(ctx)
            await ctx.deliver_events()
            if ctx.changes:  # a run that found nothing to do (most of a job's runs) leaves no trace
                subject = AuditSubject(workspace_id, None, None)
                session.add(audit_row(subject, name, "", "ok", ctx.request_id, ctx.changes, ctx.now))
        return result

    async def execute_approved(self, approver: ToolContext, request: approvals.ApprovalRequest) -> ExecutionResult:
        """Run an approved request's stored call once, in the approver's transaction, as the requester: their key
        must still be valid and still hold the tool's scope. The call has its own audit row."""
        spec = self.registry.specs.get(request.tool)
        ctx: ToolContext | None = None
        try:
            if spec is None or spec.ask is None:
                raise FavError(ErrorCode.not_found, f"No approval-gated tool named {request.tool!r}.")
            caller = await credentials.resolve_key_id(
                self.db, request.requested_by_key_id, request.workspace_id, approver.now
            )
            self._authorize(spec, caller)
            args = validate(spec, request.arguments)
            if args_hash(args) != request.args_hash:
                raise FavError(
                    ErrorCode.conflict,
                    "The stored payload no longer matches what was requested; it was not executed.",
                    hint="Ask for approval again with request_send_approval.",
                )
            ctx = self._context(
                lambda: approver.session, caller, spec, approver.now, new_id("req"), approver.client_address, request.id
            )
            async with approver.session.begin_nested():
                data = self._dump(spec, await spec.handler(ctx, args))
                await ctx.deliver_events()
        except FavError as exc:
            exc.body.request_id = ctx.request_id if ctx else approver.request_id
            outcome = ExecutionResult(False, exc.body.model_dump(mode="json", exclude_none=True))
        else:
            outcome = ExecutionResult(True, data)
        approver.session.add(
            audit_row(
                AuditSubject(request.workspace_id, request.requested_by_user_id, request.requested_by_key_id),
                request.tool,
                request.args_hash,
                "ok" if outcome.ok else outcome.data["code"],
                ctx.request_id if ctx else approver.request_id,
                {**(ctx.changes if ctx and outcome.ok else {}), "approval_id": request.id},
                approver.now,
            )
        )
        return outcome

    def _worth_auditing(self, trace: Trace, result: CallResult) -> bool:
        """Refusals of a known caller, and every call of a tool that audits its reads (personal-data exports)."""
        if trace.subject is None or trace.spec is None or trace.throttled:
            return False
        if trace.spec.audit_reads:
            return True
        if result.ok:
            return False
        code = result.data["error"]["code"]
        if code == ErrorCode.confirmation_required and result.data["error"].get("details"):
            return False  # a preview, not a refusal
        return trace.spec.mutating or code in AUDITED_REFUSALS

    async def _audit_apart(self, trace: Trace, tool_name: str, result: CallResult) -> None:
        """The audit row of a call whose own transaction wrote none (refused early, or read-only)."""
        assert trace.subject is not None
        async with self.db.transaction() as session:
            outcome = "ok" if result.ok else result.data["error"]["code"]
            session.add(
                audit_row(trace.subject, tool_name, trace.args_hash, outcome, result.request_id, {}, self.clock.now())
            )

    async def _claim_key(
        self,
        session: AsyncSession,
        spec: ToolSpec,
        scope: str,
        caller: Caller,
        key: str,
        digest: str,
        now: Any,
    ) -> tuple[IdempotencyRecord | None, IdempotencyRecord | None]:
        """Return (record to replay, None) or (None, the fresh record this call owns).

        Keys are scoped per credential: a replay may carry a secret, which only the caller that caused it may
        see again. Anonymous calls (signup) share one scope, where a replay needs the same code anyway.
        """
        existing = await session.get(IdempotencyRecord, (scope, key))
        if existing is not None and existing.expires_at <= now:
            await session.execute(
                delete(IdempotencyRecord).where(
                    col(IdempotencyRecord.scope) == scope, col(IdempotencyRecord.key) == key
                )
            )
            existing = None
        if existing is None:
            fresh = IdempotencyRecord(
                scope=scope,
                key=key,
                workspace_id=caller.workspace_id,
                tool=spec.name,
                args_hash=digest,
                response={},
                created_at=now,
                expires_at=now + IDEMPOTENCY_TTL,
            )
            try:
                async with session.begin_nested():
                    session.add(fresh)
            except IntegrityError:
                # A concurrent call with this key committed first: replay its outcome.
                existing = await session.get(IdempotencyRecord, (scope, key), populate_existing=True)
                assert existing is not None
            else:
                return None, fresh
        if existing.tool != spec.name or existing.args_hash != digest:
            raise FavError(
                ErrorCode.idempotency_mismatch,
                "This idempotency_key was already used with other arguments.",
                hint="Use a new idempotency_key for a different request.",
            )
        return existing, None

    def _storable(self, spec: ToolSpec, result: CallResult) -> dict[str, Any]:
        """Answers that carry a secret (a new key) are stored sealed, so a retry gets the identical answer."""
        if spec.returns_secret and result.ok:
            return {"sealed": seal(self.settings.secret_key, "idempotency", result.data)}
        return result.data

    def _stored(self, response: dict[str, Any]) -> dict[str, Any]:
        if set(response) == {"sealed"}:
            return dict(unseal(self.settings.secret_keys, "idempotency", response["sealed"]))
        return response
