"""Operator commands: ``python -m app.cli COMMAND``.

  run                 database + migrations + demo data + app (:3000) + voice_service (:8081)
  migrate             apply database migrations
  seed-demo           create the demo organisation (prints new credentials once)
  create-superadmin   create a platform super admin
  reset-password      set a new random password for an account and print it
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
    from app.launcher import _print_credentials
    from app.services.demo import seed_demo

    _print_credentials(seed_demo())
    return 0


def _cmd_create_superadmin(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.services import auth, tenants
    from app.services.demo import DEMO_SLUG, generate_password
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
        tenant = tenants.get_by_slug(session, args.tenant or DEMO_SLUG)
        if tenant is None:
            print(f"No organisation with slug '{args.tenant or DEMO_SLUG}'.", file=sys.stderr)
            return 1
        auth.create_user(session, tenant, email=args.email, name=args.name, password=password, role="super_admin")
    print(f"Super admin {normalise_email(args.email)} created" + (f" with password {password}" if generated else "."))
    return 0


def _cmd_reset_password(args: argparse.Namespace) -> int:
    from sqlmodel import select

    from app.services import auth
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
        session.add(user)
    print(f"New password for {user.email}: {password}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.cli", description="Admin platform operator commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="start everything (what `make run` does)")
    p.add_argument("--app-port", type=int, default=3000)
    p.add_argument("--voice-port", type=int, default=8081)
    p.set_defaults(func=_cmd_run)

    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=_cmd_migrate)
    sub.add_parser("seed-demo", help="create the demo organisation and its sample data").set_defaults(func=_cmd_seed_demo)

    p = sub.add_parser("create-superadmin", help="create a platform super admin")
    p.add_argument("email")
    p.add_argument("--name", default="Platform Admin")
    p.add_argument("--password", help="omit to be asked (or to generate one)")
    p.add_argument("--tenant", help="organisation slug the account belongs to (default: demo)")
    p.set_defaults(func=_cmd_create_superadmin)

    p = sub.add_parser("reset-password", help="set and print a new random password")
    p.add_argument("email")
    p.set_defaults(func=_cmd_reset_password)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
