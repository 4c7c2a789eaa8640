"""The ``driftgate`` command: the everyday uses of the Dagster definitions and the sandbox.

Every command exits non-zero with a one-line reason on error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from dagster_project.lib.connections import SOURCE_URL_VARS
from dagster_project.sandbox.runtime import DEFAULT_DATASET, DEFAULT_SEED


class CliError(Exception):
    """A failure reported as one line, with exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        print("driftgate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback, for any failure
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"driftgate: error: {reason}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftgate",
        description="Where software delivery drifts: Jira, GitLab and Confluence, nightly.",
    )
    sub = parser.add_subparsers(metavar="COMMAND")

    demo = sub.add_parser("demo", help="generate the demo organisation, run the nightly job")
    demo.add_argument("--dataset", default=str(DEFAULT_DATASET), help="demo dataset folder")
    demo.set_defaults(handler=cmd_demo)

    run = sub.add_parser(
        "run",
        help="run the nightly job (real servers or a sandbox dataset)",
        description="Run the nightly job once, in this process: ingest, chain, analysis, "
        "reports. One line per source and per failure on the console; the full log, with "
        "tracebacks, in a file whose path is printed.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--dataset", help="dataset served by the emulator (default: the demo)")
    run.add_argument("--as-of", help=as_of_help())
    run.add_argument(
        "-v", "--verbose", action="store_true", help="also print Dagster's own event log"
    )
    run.set_defaults(handler=cmd_run)

    sandbox = sub.add_parser("sandbox", help="the simulator and the API emulator on their own")
    ssub = sandbox.add_subparsers(metavar="ACTION")

    gen = ssub.add_parser("generate", help="write a seeded organisation as a dataset")
    gen.add_argument("--out", required=True, help="dataset folder to write")
    gen.add_argument("--seed", type=int, default=DEFAULT_SEED)
    gen.add_argument("--scale", choices=("demo", "medium", "large"), default="demo")
    gen.add_argument("--issues", type=int, help="number of issues (overrides --scale)")
    gen.add_argument("--flavor", choices=("cloud", "server"), default="cloud")
    gen.set_defaults(handler=cmd_generate)

    adv = ssub.add_parser("advance", help="move a dataset forward in time")
    adv.add_argument("--dataset", required=True)
    adv.add_argument("--days", type=int, required=True)
    adv.add_argument("--seed", type=int, default=DEFAULT_SEED)
    adv.set_defaults(handler=cmd_advance)

    srv = ssub.add_parser("serve", help="serve a dataset through the emulated REST APIs")
    srv.add_argument("--dataset", default=str(DEFAULT_DATASET))
    srv.add_argument("--port", type=int, default=0, help="0 picks a free port")
    srv.add_argument(
        "--require-token", help="accept only this token (Basic, Bearer, PRIVATE-TOKEN)"
    )
    srv.add_argument("--faults", help="e.g. 429=0.1,5xx=0.05,reset=0.02,truncate=0.02,seed=1")
    srv.add_argument("--latency-ms", type=int, default=0)
    srv.add_argument("--jira-flavor", choices=("cloud", "server"), help="override the manifest")
    srv.add_argument(
        "--no-gitlab-graphql",
        action="store_true",
        help="answer /api/graphql with 404, as an instance without GraphQL does",
    )
    srv.set_defaults(handler=cmd_serve)

    pools = sub.add_parser(
        "pools",
        help="set the Dagster instance's concurrency pools from the policy",
        description="Write the limits of the pools jira, gitlab, confluence "
        "(operations.parallel_requests of DRIFTGATE_POLICY) and duckdb (1) into the Dagster "
        "instance at DAGSTER_HOME, for runs with the multiprocess executor. Run once after "
        "a deploy and after changing the policy.",
    )
    pools.set_defaults(handler=cmd_pools)

    policy = sub.add_parser("policy", help="the policy file")
    psub = policy.add_subparsers(metavar="ACTION")
    check = psub.add_parser("check", help="validate and explain a policy file")
    check.add_argument("file")
    check.set_defaults(handler=cmd_policy_check)
    return parser


RUN_EPILOG = """environment:
  JIRA_URL, JIRA_USER, JIRA_TOKEN       Jira Cloud or Server/DC
  GITLAB_URL, GITLAB_TOKEN              GitLab, API v4 (base URL, without /api/v4)
  CONFLUENCE_URL, CONFLUENCE_USER, CONFLUENCE_TOKEN
                                        Confluence (https://site/wiki; no user: the
                                        token is a personal access token, as Bearer)
    No source URL set: the sandbox serves all three. Some set: only those are read and
    the others are skipped; the sandbox never fills in beside a real server.
  DRIFTGATE_DB         DuckDB file (default data/driftgate.duckdb); it holds one
                       organisation: another instance of a source is refused
  DRIFTGATE_REPORTS    reports folder (default reports/)
  DRIFTGATE_POLICY     policy file (default dagster_project/policy/default.yaml)
  DRIFTGATE_DATASET    dataset the sandbox serves (default data/sandbox/demo)
  DRIFTGATE_AS_OF      the moment judged at, when --as-of is not given
  DAGSTER_HOME         the Dagster instance the run is recorded in (default .dagster_home/)
"""


def as_of_help() -> str:
    """--as-of's help, with the default it would take here and now."""
    from dagster_project.lib.asof import dataset_as_of, format_as_of

    text = (
        "judge as of this ISO-8601 date or timestamp. Default: DRIFTGATE_AS_OF if set; "
        "else, when the sandbox serves every source, the dataset's as_of"
    )
    dataset = os.environ.get("DRIFTGATE_DATASET", str(DEFAULT_DATASET))
    known = dataset_as_of(dataset)
    if known is not None:
        text += f" ({dataset}: {format_as_of(known)})"
    return text + "; else the moment the run starts (UTC)"


def cmd_policy_check(args: argparse.Namespace) -> int:
    """Every problem of the file, one ``file:line:col: key: message`` line each (exit 1),
    or the policy explained in words."""
    from datetime import date

    from dagster_project.lib.policy import (
        DRIFT_RULE_IDS,
        PolicyError,
        describe_applies_to,
        describe_trigger,
        load_policy,
    )

    try:
        policy = load_policy(args.file)
    except PolicyError as exc:
        for problem in exc.errors:
            print(problem.format(args.file), file=sys.stderr)
        return 1
    scope, jira, confluence = policy.scope, policy.jira, policy.confluence
    print(f"{args.file}: valid policy (version {policy.version})")
    print("scope")
    print(
        f"  Jira projects:      {', '.join(scope.jira_projects) or 'all visible'}"
        + (f" and JQL ({scope.jira_jql})" if scope.jira_jql else "")
    )
    print(
        f"  GitLab projects:    {', '.join(map(str, scope.gitlab_projects)) or 'all member projects'}"
        + (f"; groups {', '.join(map(str, scope.gitlab_groups))}" if scope.gitlab_groups else "")
    )
    print(f"  Confluence spaces:  {', '.join(scope.confluence_spaces) or 'all visible'}")
    print("conventions")
    print(
        f"  acceptance criteria: field '{jira.acceptance_criteria_field}' or description "
        f"section '{jira.acceptance_criteria_heading}'; placeholders "
        f"({', '.join(policy.requirements.placeholders[:4])}, ...) do not count"
    )
    print(
        f"  edge cases:         a table under '{jira.edge_cases_heading}' in the description, "
        f"or a linked page labelled '{confluence.labels.edge_case_matrix}'"
    )
    print(
        f"  epics:              field '{jira.epic_link_field}' or parent; story points "
        f"'{jira.story_points_field}'"
    )
    labels = confluence.labels.model_dump()
    print("  page labels:        " + ", ".join(f"{k}={v}" for k, v in labels.items()))
    print(
        f"  approved pages:     from the first version carrying '{confluence.approved_marker}'; "
        f"runbook sections {', '.join(confluence.runbook_sections)}"
    )
    print(
        f"  incremental overlap {policy.ingest.overlap_minutes} min, reconcile every "
        f"{policy.ingest.reconcile_every_days} days, page size {policy.ingest.page_size}"
    )
    print(f"gates ({len(policy.gates)})")
    for gate in policy.gates:
        print(f"  {gate.id}: {gate.title}")
        print(f"    applies to: {describe_applies_to(gate.subject, gate.applies_to)}")
        print(f"    trigger:    {describe_trigger(gate.trigger)}")
        print(f"    requires:   {', '.join(gate.requires)}")
    print(f"gap rules ({len(policy.gap_rules)})")
    for rule in policy.gap_rules:
        print(
            f"  {rule.id} [{rule.severity}]: {rule.requires} required for "
            f"{describe_applies_to(rule.subject, rule.applies_to)}"
        )
    drift = policy.drift
    rules = {name: getattr(drift, name) for name in DRIFT_RULE_IDS}
    on = [name for name, rule in rules.items() if rule.enabled]
    print(
        f"drift rules ({len(on)} of {len(rules)} on; work starts in {drift.work_started_category})"
    )
    for name, rule in rules.items():
        settings = {k: v for k, v in rule.model_dump().items() if k not in ("enabled", "severity")}
        extra = ", ".join(f"{k}={v}" for k, v in settings.items())
        state = "" if rule.enabled else " (off)"
        print(f"  {name} [{rule.severity}]{state}" + (f": {extra}" if extra else ""))
    rework = policy.rework
    print(
        f"rework: bugs within {rework.bug_window_days} days of done, churn within "
        f"{rework.churn_window_days} days, more than {rework.max_review_rounds} review rounds, "
        f"deployment fixes within {rework.deployment_window_days} days"
    )
    today = date.today()
    active = [w for w in policy.waivers.entries if w.expires >= today]
    expired = [w for w in policy.waivers.entries if w.expires < today]
    print(f"waivers ({len(active)} active, {len(expired)} expired on {today.isoformat()})")
    for state, waivers in (("active", active), ("expired", expired)):
        for w in waivers:
            until = "until" if state == "active" else "expired after"
            print(
                f"  {state}: {w.subject} "
                + (f"gate {w.gate}" if w.gate else f"rule {w.rule}")
                + f" {until} {w.expires.isoformat()}"
                f" (owner {w.owner}: {w.reason})"
            )
    prefix = policy.waivers.jira_label_prefix
    print(
        f"  Jira labels: '{prefix}<gate or rule id>' on an issue waives it, without expiry"
        if prefix
        else "  Jira labels: off (waivers come only from the entries above)"
    )
    print(
        f"gate compliance threshold: {policy.gate_compliance_threshold:.0%} of triggered gates "
        "compliant (waived and not applicable excluded), else a warning"
    )
    return 0


def cmd_pools(args: argparse.Namespace) -> int:
    import dagster as dg

    from dagster_project.defs.automation import apply_pool_limits
    from dagster_project.lib.policy import load_policy

    dagster_home()
    with dg.DagsterInstance.get() as instance:
        limits = apply_pool_limits(instance, load_policy())
    for pool, limit in limits.items():
        print(f"pool {pool}: {limit} step(s) at a time")
    return 0


# -- sandbox ----------------------------------------------------------------------------
def cmd_generate(args: argparse.Namespace) -> int:
    from dagster_project.sandbox.simulator import generate

    summary = generate(
        Path(args.out), seed=args.seed, scale=args.scale, issues=args.issues, flavor=args.flavor
    )
    print(f"dataset written to {args.out}")
    print(summary)
    return 0


def cmd_advance(args: argparse.Namespace) -> int:
    from dagster_project.sandbox.simulator import advance

    summary = advance(Path(args.dataset), days=args.days, seed=args.seed)
    print(f"dataset {args.dataset} advanced by {args.days} day(s)")
    print(summary)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dagster_project.sandbox.emulator import server

    if not Path(args.dataset, "manifest.json").exists():
        raise CliError(f"{args.dataset} is not a dataset (no manifest.json)")
    running = server.build(
        args.dataset,
        port=args.port,
        require_token=args.require_token,
        faults=args.faults,
        latency_ms=args.latency_ms,
        jira_flavor=args.jira_flavor,
        gitlab_graphql=not args.no_gitlab_graphql,
    )
    print(running.url, flush=True)
    print(
        f"Jira {running.url}/rest  GitLab {running.url}/api/v4 (and /api/graphql)  "
        f"Confluence {running.url}/wiki"
        f"  stats {running.url}/_sandbox/stats",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        running.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        running.server.server_close()
    return 0


def _stop_on_sigterm(*_: object) -> None:
    raise KeyboardInterrupt  # unwinds serve_forever in this thread; shutdown() would deadlock


# -- the nightly job --------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    from dagster_project.lib.asof import dataset_as_of, format_as_of
    from dagster_project.sandbox.runtime import ensure_dataset

    for name in SOURCE_URL_VARS:
        os.environ.pop(name, None)  # the demo always runs on the sandbox
    dataset = ensure_dataset(args.dataset)
    print(f"demo dataset: {dataset}", flush=True)
    now = dataset_as_of(dataset)
    if now is None:
        raise CliError(f"{dataset}: the manifest has no as_of")
    # The nightly job judged on earlier days too (the analysis reads only what was true
    # then), so the first report already shows a trend.
    for step in range(DEMO_HISTORY_STEPS, 0, -1):
        day = format_as_of(now - step * DEMO_HISTORY_EVERY)
        print(f"judging as of {day[:10]} (history)", flush=True)
        run_nightly(dataset=args.dataset, as_of=day, quiet=True)
    return run_nightly(dataset=args.dataset)


DAGSTER_HOME = ".dagster_home"  # default, relative to the working folder; git-ignored


def dagster_home() -> Path:
    """The Dagster instance the commands record into: ``$DAGSTER_HOME``, else
    ``.dagster_home/`` here, shared with `dg dev` run with the same DAGSTER_HOME (the
    runs, materialisations and checks show in the UI). Created with local storage and
    no telemetry when new."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(DAGSTER_HOME).resolve())))
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        settings.write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    return home


# Earlier days the demo judges before today: every six weeks over half a year.
DEMO_HISTORY_STEPS = 4
DEMO_HISTORY_EVERY = timedelta(weeks=6)


def cmd_run(args: argparse.Namespace) -> int:
    configured = [name for name in SOURCE_URL_VARS if os.environ.get(name)]
    if args.dataset and configured:
        raise CliError(f"--dataset serves the sandbox, but {', '.join(configured)} is set")
    if args.dataset and not Path(args.dataset, "manifest.json").exists():
        raise CliError(f"{args.dataset} is not a dataset (no manifest.json)")
    return run_nightly(dataset=args.dataset, as_of=args.as_of, verbose=args.verbose)


def run_nightly(
    dataset: str | None = None, as_of: str | None = None, quiet: bool = False, verbose: bool = False
) -> int:
    """Execute the nightly job in this process and print where its outputs are.

    The console gets one line per source and per failure; the full event log, with
    tracebacks, goes to a file whose path is printed."""
    from dagster_project.lib.asof import AS_OF_TAG, dataset_as_of, format_as_of, parse_as_of
    from dagster_project.lib.runlock import DatabaseBusy, run_lock

    if dataset:
        os.environ["DRIFTGATE_DATASET"] = str(Path(dataset).resolve())
    try:
        chosen = parse_as_of(as_of) if as_of else None
    except ValueError as exc:
        raise CliError(f"--as-of {as_of!r} is not an ISO-8601 date or timestamp") from exc
    if chosen is None and dataset:  # a sandbox organisation's "now" is its generation moment
        chosen = dataset_as_of(dataset)
    tags = {AS_OF_TAG: format_as_of(chosen)} if chosen else {}
    db = os.environ.get("DRIFTGATE_DB", str(Path("data") / "driftgate.duckdb"))
    try:
        with run_lock(db):
            _database_writable(db)
            return _execute_nightly(db, tags, quiet=quiet, verbose=verbose)
    except DatabaseBusy as exc:
        raise CliError(str(exc)) from None


def _database_writable(db: str) -> None:
    """Fail at once, naming the holder, when another process has the file open."""
    import duckdb

    Path(db).parent.mkdir(parents=True, exist_ok=True)
    try:
        duckdb.connect(db).close()
    except duckdb.IOException as exc:
        holder = str(exc).split("Conflicting lock is held in", 1)[-1].strip().rstrip(".")
        raise CliError(f"{db} is open in another process ({holder[:160]})") from None


def _execute_nightly(db: str, tags: dict[str, str], *, quiet: bool, verbose: bool) -> int:
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.runlog import RunWatcher, failure_lines, write_run_log

    definitions = defs.load_fn()
    job = definitions.resolve_job_def("nightly")
    home = dagster_home()
    instance = dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())  # Dagster run ids are UUIDs
    log_file = home / "logs" / f"nightly-{run_id[:8]}.log"
    # Dagster's own console output carries every traceback: only with --verbose.
    level = "DEBUG" if verbose else "CRITICAL"
    config = {"loggers": {"console": {"config": {"log_level": level}}}}
    started = time.monotonic()
    with RunWatcher(instance, run_id, echo=not (quiet or verbose)):
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=config, tags=tags, run_id=run_id
        )
    elapsed = time.monotonic() - started
    write_run_log(instance, run_id, log_file)
    if not result.success:
        lines = failure_lines(instance, run_id)
        for line in lines:
            print(line, file=sys.stderr, flush=True)
        raise CliError(
            f"nightly job failed after {elapsed:.1f}s ({len(lines)} failed step(s)); "
            f"full log: {log_file}"
        )
    print(f"nightly job succeeded in {elapsed:.1f}s (log: {log_file})", flush=True)
    if quiet:
        return 0
    reports = Path(os.environ.get("DRIFTGATE_REPORTS", "reports"))
    print(f"database: {Path(db).resolve()}")
    latest = reports / "latest.html"
    if latest.exists():
        print(f"report:   {latest.resolve()}")
    if (reports / "exports").is_dir():
        print(f"exports:  {(reports / 'exports').resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
