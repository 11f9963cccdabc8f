"""``sxtseg catalog ...``: add results, serve, create users, share projects with groups, migrate (see :mod:`sxtseg.cli`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidArgumentError

__all__ = ["add_parser"]


def _database(args: argparse.Namespace) -> None:
    from .database import configure

    configure(db=args.db, url=args.url)


def _cmd_add(args: argparse.Namespace) -> int:
    _database(args)
    from django.contrib.auth import get_user_model

    from .ingest import add_many

    user = None
    if args.user:
        user = get_user_model().objects.filter(username=args.user).first()
        if user is None:
            raise InvalidArgumentError(f"no catalog user {args.user!r} (sxtseg catalog createuser)")
    if args.jobs is not None and args.jobs < 1:
        raise InvalidArgumentError(f"--jobs {args.jobs}: at least 1")
    given = {Path(folder): folder for folder in args.results}  # printed as the user wrote them
    # on PostgreSQL over --jobs connections, the next folder read meanwhile; lines in the folders' order
    for folder, runs in add_many(args.results, args.project, conditions=args.condition, fields=args.field,
                                 tags=args.tag, user=user, jobs=args.jobs, progress=not args.quiet):
        for run in runs:
            state = "added" if run["created"] else "already in the catalog"
            print(f"{given.get(folder, folder)}: sample {run['sample']}, run {run['run_id']} {state}", flush=True)
    return 0


def _cmd_createuser(args: argparse.Namespace) -> int:
    _database(args)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from .models import ROLES, Membership, Project

    users = get_user_model()
    user = users.objects.filter(username=args.name).first()
    if user is None:
        user = users.objects.create_user(args.name, password=args.password)
    elif args.password:
        user.set_password(args.password)
    if args.superuser:
        user.is_superuser = user.is_staff = True
    user.save()
    if args.project:
        if args.role not in dict(ROLES):
            raise InvalidArgumentError(f"--role {args.role!r}: one of {', '.join(dict(ROLES))}")
        project, _ = Project.objects.get_or_create(name=args.project)
        Membership.objects.update_or_create(project=project, user=user, defaults={"role": args.role})
    token, _ = Token.objects.get_or_create(user=user)
    print(token.key)
    return 0


def _cmd_share(args: argparse.Namespace) -> int:
    _database(args)
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import transaction

    from .models import ROLES, GroupShare, Project

    if args.role not in dict(ROLES):
        raise InvalidArgumentError(f"--role {args.role!r}: one of {', '.join(dict(ROLES))}")
    project = Project.objects.filter(name=args.project).first()
    if project is None:
        raise InvalidArgumentError(f"no catalog project {args.project!r}")
    users = get_user_model().objects
    missing = [name for name in args.user if not users.filter(username=name).exists()]
    if missing:
        raise InvalidArgumentError(f"no catalog user {', '.join(map(repr, missing))} (sxtseg catalog createuser)")
    with transaction.atomic():
        group, _ = Group.objects.get_or_create(name=args.group)
        group.user_set.add(*users.filter(username__in=args.user))
        if args.revoke:
            GroupShare.objects.filter(project=project, group=group).delete()
            print(f"project {project.name!r} no longer shared with group {group.name!r}")
            return 0
        GroupShare.objects.update_or_create(project=project, group=group, defaults={"role": args.role})
    members = ", ".join(sorted(group.user_set.values_list("username", flat=True))) or "no users yet"
    print(f"project {project.name!r} shared with group {group.name!r} as {args.role} ({members})")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    _database(args)
    import faulthandler
    import signal
    import threading

    from django.conf import settings
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    if args.host not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS.append(args.host)
    httpd = ThreadedWSGIServer((args.host, args.port), WSGIRequestHandler, ipv6=":" in args.host)
    httpd.set_app(get_wsgi_application())
    from .statement_timeout import limit_request_statements

    limit_request_statements()

    def stop(signum, frame):
        # shutdown() waits for serve_forever to return, so it cannot run in the thread that serves
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1)  # `kill -USR1 PID` prints every thread's stack to stderr
    print(f"sxtseg catalog on http://{args.host}:{httpd.server_port}/api/ "
          f"({settings.DATABASES['default']['NAME']}); Ctrl-C stops it", flush=True)
    try:
        httpd.serve_forever(poll_interval=0.5)
    finally:
        httpd.server_close()
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("sxtseg catalog stopped", flush=True)
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    _database(args)
    print("catalog database up to date")
    return 0


def add_parser(sub) -> None:
    """The ``catalog`` subcommand and its own subcommands."""
    catalog = sub.add_parser("catalog", help="the smart catalog: add results, serve the API, create users")
    commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")

    def common(p):
        p.add_argument("--db", help="SQLite catalog file (default: SXTSEG_CATALOG_DB, else the user's data folder)")
        p.add_argument("--url", help="postgresql://user:password@host:port/db of a shared catalog "
                                     "(default: SXTSEG_CATALOG_URL)")

    p = commands.add_parser("add", help="register results folders of sxtseg run / ct / cxr (idempotent)")
    p.add_argument("results", nargs="+", help="results folders")
    p.add_argument("--project", required=True, help="project name (created when new)")
    p.add_argument("--condition", action="append", default=[],
                   help="cell_line=, infection=infected|mock, hours_post_infection=, replicate=, subject_id=, "
                        "study_date=YYYY-MM-DD (repeatable)")
    p.add_argument("--field", action="append", default=[], help="free key=value fact of the sample (repeatable)")
    p.add_argument("--tag", action="append", default=[], help="tag of the sample (repeatable)")
    p.add_argument("--user", help="catalog user recorded as adding the runs (must be able to write)")
    p.add_argument("-j", "--jobs", type=int, help="PostgreSQL: folders written at once, over as many connections, "
                                                  "each in its own transaction (default 4; SQLite: always 1)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    common(p)
    p.set_defaults(func=_cmd_add)

    p = commands.add_parser("serve", help="serve the REST API and admin (one user; gunicorn for many)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    common(p)
    p.set_defaults(func=_cmd_serve)

    p = commands.add_parser("createuser", help="make (or update) a user and print its API token")
    p.add_argument("name", help="user name")
    p.add_argument("--password", help="password for the web page (default: none, token only)")
    p.add_argument("--project", help="give the user a role on this project (created when new)")
    p.add_argument("--role", default="member", help="owner, member or collaborator (default member)")
    p.add_argument("--superuser", action="store_true", help="may see and change everything, and use the admin")
    common(p)
    p.set_defaults(func=_cmd_createuser)

    p = commands.add_parser("share", help="share a project with a group of users, in one role")
    p.add_argument("project", help="project name")
    p.add_argument("--group", required=True, help="group name (created when new)")
    p.add_argument("--role", default="collaborator", help="owner, member or collaborator (default collaborator)")
    p.add_argument("--user", action="append", default=[], help="add this user to the group (repeatable)")
    p.add_argument("--revoke", action="store_true", help="stop sharing the project with the group")
    common(p)
    p.set_defaults(func=_cmd_share)

    p = commands.add_parser("migrate", help="create or update the catalog's tables")
    common(p)
    p.set_defaults(func=_cmd_migrate)
