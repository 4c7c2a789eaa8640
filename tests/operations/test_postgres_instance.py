"""The Dagster instance on PostgreSQL, as production runs it.

A PostgreSQL server of our own (initdb into a temporary folder, a free loopback port),
the ``dagster.yaml`` that docs/deploy.md publishes (PostgreSQL storage through
environment variables, the queued run coordinator, the concurrency limits), the nightly
job run the way users run it (``driftgate run`` as a subprocess), and then the same
instance read three ways: Dagster's Python API, PostgreSQL itself, and the webserver's
GraphQL API — where stopping the schedule writes to the schedule storage.

Needs PostgreSQL's server binaries (Debian's ``postgresql`` package): skipped without
them on a developer's machine, a failure in CI (``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import requests

from tests.conftest import ENV_PREFIXES, HANDMADE, free_port

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
DB_NAME = "dagster"
PG_USER = "dagster"
PG_PASSWORD = "not-a-secret-test-only"
SCHEDULE = "nightly_schedule"


def postgres_bindir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres: on PATH, else Debian's versioned one."""
    found = shutil.which("initdb")
    if found:
        bindir = Path(found).resolve().parent
        if (bindir / "pg_ctl").exists() and (bindir / "postgres").exists():
            return bindir
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    candidates.sort(key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    return Path(candidates[-1]).parent if candidates else None


@dataclass
class ServerUser:
    """Who the server runs as: the caller, or (PostgreSQL refuses root) an unprivileged
    account — ``postgres`` when the package created it, else ``nobody``."""

    uid: int
    gid: int
    name: str

    @classmethod
    def choose(cls) -> ServerUser:
        if os.geteuid() != 0:
            return cls(os.geteuid(), os.getegid(), pwd.getpwuid(os.geteuid()).pw_name)
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid, name)
        pytest.fail(
            "running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as"
        )

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self.uid != os.geteuid():  # root: drop to the server's user for this command
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, **kwargs)


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    db_name: str

    def connect(self):
        return psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password,
            dbname=self.db_name, connect_timeout=10,
        )  # fmt: skip


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    bindir = postgres_bindir()
    if bindir is None:
        message = "postgresql not installed (no initdb on PATH or under /usr/lib/postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    user = ServerUser.choose()
    # Not under pytest's tmp_path: its parents are private to the caller, and the server
    # may run as another user. /tmp is short enough for the Unix socket path, too.
    base = Path(tempfile.mkdtemp(prefix="driftgate-pg-"))
    os.chown(base, user.uid, user.gid)
    data, log, pwfile = base / "data", base / "server.log", base / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    os.chown(pwfile, user.uid, user.gid)

    def check(done: subprocess.CompletedProcess, what: str) -> None:
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(
                f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{server_log}"
            )

    started = False
    try:
        check(
            user.run([
                str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={pwfile}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync",
            ]),
            "initdb",
        )  # fmt: skip
        port = free_port()
        options = f"-F -c listen_addresses=127.0.0.1 -p {port} -k {base}"  # -F: no fsync
        check(
            user.run([
                str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                "-w", "-t", "30", "start",
            ]),
            "pg_ctl start",
        )  # fmt: skip
        started = True
        admin = Postgres("127.0.0.1", port, PG_USER, PG_PASSWORD, "postgres").connect()
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB_NAME}")
        admin.close()
        yield Postgres("127.0.0.1", port, PG_USER, PG_PASSWORD, DB_NAME)
    finally:
        if started:
            user.run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def published_dagster_yaml() -> str:
    """The production ``dagster.yaml`` of docs/deploy.md: the fenced block that starts
    with ``# $DAGSTER_HOME/dagster.yaml``."""
    text = DEPLOY_DOC.read_text()
    match = re.search(r"```yaml\n(# \$DAGSTER_HOME/dagster\.yaml\n.*?)```", text, re.S)
    assert match, f"{DEPLOY_DOC} has no ```yaml block starting with '# $DAGSTER_HOME/dagster.yaml'"
    return match.group(1)


def subprocess_env(home: Path, pg: Postgres, **extra: str) -> dict[str, str]:
    """The caller's environment without any Driftgate, source or Dagster-home setting,
    plus this test's instance and its PostgreSQL connection."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(ENV_PREFIXES) and not name.startswith("DAGSTER_")
    }
    env.update(pg_env(pg), DAGSTER_HOME=str(home), **extra)
    return env


def pg_env(pg: Postgres) -> dict[str, str]:
    """The variables the published dagster.yaml reads the connection from."""
    return {
        "DAGSTER_PG_USERNAME": pg.user,
        "DAGSTER_PG_PASSWORD": pg.password,
        "DAGSTER_PG_HOST": pg.host,
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_DB": pg.db_name,
    }


@dataclass
class Instance:
    """A working folder with DAGSTER_HOME (the published dagster.yaml), a copy of the
    handmade dataset, and the environment every subprocess gets."""

    home: Path
    work: Path
    dataset: Path
    env: dict[str, str]


@pytest.fixture(scope="module")
def instance_home(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Instance:
    work = tmp_path_factory.mktemp("pg_instance")
    home = work / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(published_dagster_yaml())
    dataset = work / "dataset"
    shutil.copytree(HANDMADE, dataset)
    env = subprocess_env(
        home,
        postgres,
        DRIFTGATE_DB=str(work / "driftgate.duckdb"),
        DRIFTGATE_REPORTS=str(work / "reports"),
        DRIFTGATE_DATASET=str(dataset),
    )
    return Instance(home=home, work=work, dataset=dataset, env=env)


@dataclass
class Webserver:
    proc: subprocess.Popen
    url: str
    log: Path


@pytest.fixture(scope="module")
def webserver_process(instance_home: Instance) -> Iterator[Webserver]:
    """``dagster-webserver`` on the code location with the same DAGSTER_HOME, started
    before the nightly run so that it loads the code while the run works."""
    port = free_port()
    log = instance_home.work / "webserver.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "dagster_webserver", "-m", "dagster_project.definitions",
                "-h", "127.0.0.1", "-p", str(port),
            ],
            cwd=instance_home.work, env=instance_home.env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield Webserver(proc=proc, url=f"http://127.0.0.1:{port}", log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def nightly(
    postgres: Postgres, instance_home: Instance, webserver_process: Webserver
) -> Iterator[Instance]:
    """``driftgate run`` on the handmade dataset, recorded in the PostgreSQL instance."""
    work = instance_home.work
    done = subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "run", "--dataset", str(instance_home.dataset)],
        cwd=work, env=instance_home.env, capture_output=True, text=True, timeout=150,
    )  # fmt: skip
    assert done.returncode == 0, f"driftgate run failed:\n{done.stdout}\n{done.stderr[-5000:]}"
    assert (work / "reports" / "latest.html").exists()
    # The instance in this process reads the same variables as the subprocess did.
    with pytest.MonkeyPatch.context() as patch:
        for name, value in pg_env(postgres).items():
            patch.setenv(name, value)
        patch.setenv("DAGSTER_HOME", str(instance_home.home))
        yield instance_home


def test_the_run_is_recorded_in_the_postgres_instance(nightly: Instance) -> None:
    import dagster as dg
    from dagster_postgres.event_log import PostgresEventLogStorage
    from dagster_postgres.run_storage import PostgresRunStorage
    from dagster_postgres.schedule_storage import PostgresScheduleStorage

    with dg.DagsterInstance.from_config(str(nightly.home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        runs = instance.get_runs(filters=dg.RunsFilter(job_name="nightly"))
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS]
        run_id = runs[0].run_id

        report_key = dg.AssetKey(["reports", "html_report"])
        latest = instance.get_latest_materialization_event(report_key)
        assert latest is not None and latest.run_id == run_id
        raw_keys = [dg.AssetKey(["raw", source]) for source in ("jira", "gitlab", "confluence")]
        materialised = instance.get_latest_materialization_events(raw_keys)
        assert all(materialised[key] is not None for key in raw_keys), materialised
        steps = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.STEP_SUCCESS
        ).records
        assert len(steps) > 10


def test_postgres_holds_the_run_rows(nightly: Instance, postgres: Postgres) -> None:
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT run_id, status FROM runs WHERE pipeline_name = 'nightly'")
        rows = cur.fetchall()
        assert len(rows) == 1 and rows[0][1] == "SUCCESS", rows
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
            (rows[0][0], "ASSET_MATERIALIZATION"),
        )
        assert cur.fetchone()[0] > 10
    conn.close()


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    answer = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=30
    )
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


RUNS = "{ runsOrError { ... on Runs { results { runId jobName status } } } }"
SCHEDULES = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
    name location { name } schedules { name scheduleState { id status } } } } } }"""
STOP_SCHEDULE = """mutation($id: String!) { stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
    ... on UnauthorizedError { message } } }"""


@pytest.fixture(scope="module")
def webserver(nightly: Instance, webserver_process: Webserver) -> str:
    """The webserver's URL once it answers (after the nightly run)."""
    proc, url, log = webserver_process.proc, webserver_process.url, webserver_process.log
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"dagster-webserver exited {proc.returncode}:\n{log.read_text()}")
        try:
            if requests.get(f"{url}/server_info", timeout=2).ok:
                return url
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"dagster-webserver did not answer in 90 s:\n{log.read_text()}")
        time.sleep(0.5)


def test_the_webserver_reads_the_run_from_postgres(webserver: str) -> None:
    runs = graphql(webserver, RUNS)["runsOrError"]["results"]
    assert [(run["jobName"], run["status"]) for run in runs] == [("nightly", "SUCCESS")]


def test_stopping_the_schedule_in_the_webserver_writes_the_schedule_storage(
    webserver: str, nightly: Instance, postgres: Postgres
) -> None:
    import dagster as dg

    repositories = graphql(webserver, SCHEDULES)["repositoriesOrError"]["nodes"]
    schedules = {s["name"]: s for repo in repositories for s in repo["schedules"]}
    state = schedules[SCHEDULE]["scheduleState"]
    assert state["status"] == "RUNNING"  # running by default, declared in code

    stopped = graphql(webserver, STOP_SCHEDULE, {"id": state["id"]})["stopRunningSchedule"]
    assert stopped["__typename"] == "ScheduleStateResult", stopped
    assert stopped["scheduleState"]["status"] == "STOPPED"

    with dg.DagsterInstance.from_config(str(nightly.home)) as instance:
        states = {s.instigator_name: s.status.value for s in instance.all_instigator_state()}
    assert states.get(SCHEDULE) == "STOPPED", states
    with postgres.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM instigators WHERE instigator_type = 'SCHEDULE'")
        assert ("STOPPED",) in cur.fetchall()
    conn.close()
