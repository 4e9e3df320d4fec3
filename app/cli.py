"""Operator commands: ``python -m app.cli COMMAND``.

run                 database + migrations + demo data + app (:3000) + voice_service (:8081)
migrate             apply database migrations
seed-demo           create the demo organisation (prints new credentials once)
create-superadmin   create a platform super admin
reset-password      set a new random password for an account, sign it out everywhere, print the password
import-csv          import contacts from a CSV file into an organisation (same engine as the upload page)
show-quotas         an organisation's quotas (what it may use of the platform's shared capacity)
set-quota           change one quota of an organisation, or put it back to the default
assign-number       route calls to a number to an organisation (checked against Twilio when configured)
release-number      stop answering a number
billing-run         invoice every organisation's usage of a month (default: the previous UTC month), once
"""

from __future__ import annotations

import argparse
import getpass
import sys


def _cmd_run(args: argparse.Namespace) -> int:
    from app.launcher import run

    return run(app_port=args.app_port, voice_port=args.voice_port)


def _cmd_migrate(args: argparse.Namespace) -> int:
    from app.launcher import _child_env, migrate
    from models.db import database_url

    migrate(_child_env(database_url()))
    return 0


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from app.launcher import credential_lines
    from app.services.demo import seed_demo

    print("\n".join(credential_lines(seed_demo())))
    return 0


def _cmd_create_superadmin(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.services import organisations
    from app.services.accounts import auth, tenants
    from app.services.demo import generate_password
    from app.services.validation import email_problem, normalise_email, password_problem
    from models import User
    from models.db import session_scope

    if problem := email_problem(args.email):
        print(problem, file=sys.stderr)
        return 1
    password = args.password or (getpass.getpass("Password (empty = generate): ") if sys.stdin.isatty() else "")
    generated = not password
    password = password or generate_password()
    if problem := password_problem(password, args.email):
        print(problem, file=sys.stderr)
        return 1
    with session_scope() as session:
        if session.exec(select(User.id).where(User.email == normalise_email(args.email))).first():
            print("An account with this email already exists.", file=sys.stderr)
            return 1
        # Super admins belong to the platform's own organisation (created with the first of them).
        tenant = (
            tenants.get_by_slug(session, args.tenant) if args.tenant else organisations.platform_organisation(session)
        )
        if tenant is None:
            print(f"No organisation with slug '{args.tenant}'.", file=sys.stderr)
            return 1
        auth.create_user(session, tenant, email=args.email, name=args.name, password=password, role="super_admin")
    print(f"Super admin {normalise_email(args.email)} created" + (f" with password {password}" if generated else "."))
    return 0


def _cmd_reset_password(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.services.accounts import auth
    from app.services.demo import generate_password
    from app.services.validation import normalise_email
    from models import User
    from models.db import session_scope

    password = generate_password()
    with session_scope() as session:
        user = session.exec(select(User).where(User.email == normalise_email(args.email))).first()
        if user is None:
            print("No account uses this email.", file=sys.stderr)
            return 1
        user.password_hash = auth.hash_password(password)
        auth.revoke_credentials(session, user)  # whoever had the old password is signed out everywhere
        session.add(user)
    print(f"New password for {user.email}: {password}")
    return 0


def _cmd_import_csv(args: argparse.Namespace) -> int:
    """Exit 0 when the file was processed (rows with problems are in the error report), 1 when it was refused."""
    import time
    from pathlib import Path

    from app.services.accounts import tenants
    from app.services.accounts.scope import Scope
    from app.services.crm import custom_fields
    from app.services.errors import ServiceError
    from app.services.imports import csv_files, csv_import, csv_loader
    from app.services.imports import csv_mapping as cm
    from models.db import session_scope

    def refuse(reason: str) -> int:
        print(f"Refused: {reason}", file=sys.stderr)
        return 1

    source = Path(args.file)
    if not source.is_file():
        return refuse(f"{source} is not a file.")
    with session_scope() as session:
        tenant = tenants.get_by_slug(session, args.tenant)
        if tenant is None:
            return refuse(f"No organisation has the slug “{args.tenant}”.")
        scope = Scope.system(tenant.id)
    try:
        # The import reads (and resumes from) its own private copy, stored like an upload: size limit and quota.
        view = csv_import.store_upload(
            scope, source.name, csv_files.file_chunks(source), expected_size=source.stat().st_size
        )
        if args.no_header or args.delimiter:
            view = csv_import.reread(
                scope,
                view.id,
                has_header=False if args.no_header else None,
                delimiter=csv_files.delimiter_named(args.delimiter or "") or args.delimiter,
            )
        mapping = view.mapping
        if args.mapping:
            saved = next((m for m in cm.saved_mappings(scope) if m.name == args.mapping), None)
            if saved is None:
                return refuse(f"No saved mapping is called “{args.mapping}”.")
            mapping = cm.apply_saved(saved, view.headers, custom_fields.list_fields(scope))
        csv_import.start(
            scope,
            view.id,
            mapping,
            {"duplicates": args.duplicates, "keep_existing_when_empty": not args.overwrite_with_empty},
            enqueue=False,
        )
    except ServiceError as exc:
        return refuse(exc.message.replace("\n", " "))
    print(
        f"Importing {source.name} ({view.size}) into {tenant.name}: "
        + ", ".join(f"{h} -> {t}" for h, t in zip(view.headers, mapping) if t != cm.SKIP),
        flush=True,
    )
    started = time.monotonic()

    def progress(totals) -> None:
        if not args.quiet:
            print(
                f"  {totals.rows_read:>10,} rows read  {totals.created:,} added  {totals.updated:,} updated  "
                f"{totals.skipped:,} skipped  {totals.failed:,} with errors",
                file=sys.stderr,
                flush=True,
            )

    csv_loader.enable_interpreter_tuning()  # a process of its own: the import may tune the interpreter
    done = csv_import.execute(view.id, on_progress=progress)
    print(
        f"{done.status_label} in {time.monotonic() - started:.1f}s: {done.rows_read:,} rows read, {done.created:,} added, "
        f"{done.updated:,} updated, {done.skipped:,} skipped, {done.failed:,} with errors."
    )
    if done.rows_read and (done.failed or done.skipped):
        name, chunks = csv_import.error_report(scope, done.id)
        try:
            report = csv_files.store(
                scope.tenant_id, (chunk.encode() for chunk in chunks), name=f"{done.id}-{name}", limit=None
            )
        except ServiceError as exc:
            print(f"Error report not saved: {exc.message} It can be downloaded from the Import page.", file=sys.stderr)
        else:
            print(f"Error report: {report}")
    if done.status != "done":
        print(f"Stopped: {done.error}", file=sys.stderr)
        return 1
    return 0


def _tenant_or_none(slug: str):
    from app.services.accounts import tenants
    from models.db import session_scope

    with session_scope() as session:
        tenant = tenants.get_by_slug(session, slug)
        if tenant is None:
            print(f"No organisation has the slug “{slug}”.", file=sys.stderr)
            return None
        session.expunge(tenant)
        return tenant


def _print_quotas(tenant, quotas) -> None:
    from app.services.accounts.quotas import lines

    print(f"Quotas of {tenant.name} ({tenant.slug}):")
    for line in lines(quotas):
        note = "default" if not line.overridden else f"default {line.shown(line.default)}"
        print(f"  {line.name:<28} {line.shown():>12}  ({note})  {line.label}")


def _cmd_show_quotas(args: argparse.Namespace) -> int:
    from app.services.accounts.quotas import from_settings

    tenant = _tenant_or_none(args.slug)
    if tenant is None:
        return 1
    _print_quotas(tenant, from_settings(tenant.settings))
    return 0


def _cmd_set_quota(args: argparse.Namespace) -> int:
    from app.services.accounts import quotas
    from app.services.errors import ServiceError
    from models.db import session_scope

    tenant = _tenant_or_none(args.slug)
    if tenant is None:
        return 1
    try:
        value = quotas.parse_value(args.name, args.value)
        with session_scope() as session:
            now = quotas.set_quota(session, tenant.id, args.name, value)
    except ServiceError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    _print_quotas(tenant, now)
    return 0


def _cmd_assign_number(args: argparse.Namespace) -> int:
    from app.services.accounts import tenants
    from app.services.accounts.scope import Scope
    from app.services.calls import phone_numbers
    from app.services.errors import ServiceError
    from models.db import session_scope

    with session_scope() as session:
        tenant = tenants.get_by_slug(session, args.slug)
        if tenant is None:
            print(f"No organisation has the slug “{args.slug}”.", file=sys.stderr)
            return 1
        tenant_id = str(tenant.id)
    try:
        view = phone_numbers.assign(Scope.platform_operator(), tenant_id, args.number, args.label or "")
    except ServiceError as exc:
        print(exc.message.replace("\n", " "), file=sys.stderr)
        return 1
    checked = "" if phone_numbers.twilio_checks_numbers() else " (Twilio is not configured: ownership not checked)"
    print(f"{view.number} is now answered for {view.organisation} ({view.slug}){checked}.")
    return 0


def _cmd_release_number(args: argparse.Namespace) -> int:
    from app.services.accounts.scope import Scope
    from app.services.calls import phone_numbers
    from app.services.errors import ServiceError

    try:
        view = phone_numbers.release(Scope.platform_operator(), args.number)
    except ServiceError as exc:
        print(exc.message.replace("\n", " "), file=sys.stderr)
        return 1
    print(f"{view.number} is released from {view.organisation} ({view.slug}); callers hear that it is not connected.")
    return 0


def _cmd_billing_run(args: argparse.Namespace) -> int:
    """Exit 0 when the period is fully done, 1 when some organisations failed (a re-run retries them) or the
    run could not start, 2 when another runner is still working on part of it."""
    from app.services.billing import monthly_run, usage
    from app.services.errors import ServiceError

    period = args.period or monthly_run.previous_period()

    def progress(**fields) -> None:
        print(
            f"  {fields['period']}: {fields['done']:,}/{fields['total']:,} organisations worked "
            f"({fields['invoiced']:,} invoiced, {fields['failed']:,} failed, {fields['taken']:,} with another runner)",
            file=sys.stderr,
            flush=True,
        )

    print(f"Billing run for {period}", file=sys.stderr, flush=True)
    try:
        result = monthly_run.run_period(period, progress=progress, workers=args.workers)
    except ServiceError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    skipped = ", ".join(f"{n:,} {reason.replace('_', ' ')}" for reason, n in sorted(result.skipped.items()))
    print(
        f"{result.period} {result.status} in {result.seconds:.1f}s: {result.organisations:,} organisations, "
        f"{result.invoiced:,} invoiced ({result.worked:,} now), {sum(result.skipped.values()):,} skipped"
        + (f" ({skipped})" if skipped else "")
        + f", {result.failed:,} failed, {result.pending:,} still with another runner; "
        f"usage invoiced {usage.format_cents(result.invoiced_cents)}."
    )
    for failure in result.failures:
        print(f"  failed: {failure['organisation']}: {failure['error']}", file=sys.stderr)
    return {"done": 0, "failed": 1}.get(result.status, 2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description="Admin platform operator commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start everything (what `make run` does)")
    p.add_argument("--app-port", type=int, default=3000)
    p.add_argument("--voice-port", type=int, default=8081)
    p.set_defaults(func=_cmd_run)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_cmd_migrate)
    sub.add_parser("seed-demo", help="create the demo organisation and its sample data").set_defaults(
        func=_cmd_seed_demo
    )

    p = sub.add_parser("create-superadmin", help="create a platform super admin")
    p.add_argument("email")
    p.add_argument("--name", default="Platform Admin")
    p.add_argument("--password", help="omit to be asked (or to generate one)")
    p.add_argument(
        "--tenant",
        help="organisation slug the account belongs to (default: the platform organisation, created with the first super admin)",
    )
    p.set_defaults(func=_cmd_create_superadmin)

    p = sub.add_parser("import-csv", help="import contacts from a CSV file (as the upload page does)")
    p.add_argument("--tenant", required=True, help="the organisation's slug (the demo's is 'demo')")
    p.add_argument("file")
    p.add_argument(
        "--duplicates",
        choices=["create_only", "update", "skip"],
        default="skip",
        help="rows whose email matches an existing contact: error, update it, or skip (default)",
    )
    p.add_argument(
        "--overwrite-with-empty",
        action="store_true",
        help="when updating, let empty cells clear existing values (default: keep them)",
    )
    p.add_argument("--mapping", help="a saved column mapping to apply, by name")
    p.add_argument("--no-header", action="store_true", help="the first row is data, not column names")
    p.add_argument("--delimiter", help="comma, semicolon, tab or pipe (default: detected)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_import_csv)

    p = sub.add_parser("show-quotas", help="an organisation's quotas")
    p.add_argument("slug", help="the organisation's slug")
    p.set_defaults(func=_cmd_show_quotas)

    p = sub.add_parser("set-quota", help="change one quota of an organisation (super admin operation)")
    p.add_argument("slug", help="the organisation's slug")
    p.add_argument(
        "name",
        help="upload_disk_bytes, concurrent_imports, consultations_per_minute, max_specialists "
        "or specialist_knowledge_chars",
    )
    p.add_argument("value", help="a whole number, a size such as 5GB for upload_disk_bytes, or 'default'")
    p.set_defaults(func=_cmd_set_quota)

    p = sub.add_parser("assign-number", help="route calls to a phone number to an organisation")
    p.add_argument("slug", help="the organisation's slug (the demo's is 'demo')")
    p.add_argument("number", help="the number in international format, e.g. +14155550100")
    p.add_argument("--label", help="what the number is for, e.g. 'Main line'")
    p.set_defaults(func=_cmd_assign_number)

    p = sub.add_parser("release-number", help="stop answering a phone number")
    p.add_argument("number")
    p.set_defaults(func=_cmd_release_number)

    p = sub.add_parser("reset-password", help="set and print a new random password; signs the account out everywhere")
    p.add_argument("email")
    p.set_defaults(func=_cmd_reset_password)

    p = sub.add_parser("billing-run", help="invoice a month's usage to every organisation, once (safe to re-run)")
    p.add_argument("--period", help="the month, YYYY-MM (UTC); default: the previous month")
    p.add_argument("--workers", type=int, default=8, help="organisations worked at once")
    p.set_defaults(func=_cmd_billing_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
