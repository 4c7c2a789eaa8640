"""The simulated organisation: teams, Jira projects, repositories, spaces, people.

Everything here is fixed by (seed, flavor, people per team), so ``advance`` can rebuild
the same organisation from the parameters recorded in ``truth.json``. Projects differ
on purpose where real instances differ: workflow status names, team-managed projects
with their own "Acceptance Criteria" / "Story Points" fields, acceptance criteria kept
in a field or in a description section, a repository whose default branch is ``master``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

JIRA_BASE = {
    "cloud": "https://driftgate-demo.atlassian.net",
    "server": "https://jira.driftgate.example",
}
CONFLUENCE_BASE = {
    "cloud": "https://driftgate-demo.atlassian.net/wiki",
    "server": "https://confluence.driftgate.example",
}
GITLAB_BASE = "https://gitlab.driftgate.example"
GRAFANA_BASE = "https://grafana.driftgate.example"

# Jira renders timestamps in the zone of the account that reads them.
VIEWER_ZONE = {"cloud": ZoneInfo("America/Los_Angeles"), "server": ZoneInfo("Europe/Berlin")}

CATEGORIES = {
    "new": (2, "To Do", "blue-gray"),
    "indeterminate": (4, "In Progress", "yellow"),
    "done": (3, "Done", "green"),
}


@dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str  # new | indeterminate | done
    description: str = ""
    icon: str = "generic.png"


# One registry of statuses, as /rest/api/2/status lists them; workflows pick from it.
STATUSES = [
    Status(
        "1",
        "Open",
        "new",
        "The issue is open and ready for the assignee to start work on it.",
        "open.png",
    ),
    Status(
        "3",
        "In Progress",
        "indeterminate",
        "This issue is being actively worked on at the moment by the assignee.",
        "inprogress.png",
    ),
    Status(
        "5",
        "Resolved",
        "done",
        "A resolution has been taken, and it is awaiting verification by reporter.",
        "resolved.png",
    ),
    Status(
        "6",
        "Closed",
        "done",
        "The issue is considered finished, the resolution is correct.",
        "closed.png",
    ),
    Status("10000", "To Do", "new"),
    Status("10001", "Done", "done"),
    Status("10100", "Backlog", "new"),
    Status("10101", "Selected for Development", "new"),
    Status("10102", "In Dev", "indeterminate"),
    Status("10103", "Code Review", "indeterminate"),
    Status("10104", "QA", "indeterminate"),
    Status("10105", "Released", "done"),
    Status("10106", "In Review", "indeterminate"),
    Status("10107", "Review", "indeterminate"),
    Status("10108", "New", "new"),
    Status("10109", "Working", "indeterminate"),
    Status("10110", "Verifying", "indeterminate"),
    Status("10111", "Doing", "indeterminate"),
    Status("10112", "Testing", "indeterminate"),
    Status("10113", "Shipped", "done"),
    Status("10114", "Implementing", "indeterminate"),
    Status("10115", "Peer Review", "indeterminate"),
    Status("10116", "Accepted", "done"),
    Status("10117", "Won't Do", "done"),
    Status("10118", "Blocked", "indeterminate"),
    Status("10119", "Ready for Dev", "new"),
]
STATUS_BY_NAME = {s.name: s for s in STATUSES}


@dataclass(frozen=True)
class Workflow:
    """Status names along the happy path: planned (new), start/review/verify, done."""

    backlog: str
    planned: str | None  # a second "new" status some teams move into at sprint planning
    working: tuple[str, ...]  # indeterminate statuses in order: start, review, (verify)
    done: str

    def status(self, name: str) -> Status:
        return STATUS_BY_NAME[name]


@dataclass(frozen=True)
class FieldIds:
    """Custom field ids one project's issues carry (None: not on this project)."""

    sprint: str
    rank: str
    story_points: str
    acceptance_criteria: str | None
    epic_link: str | None  # server only; cloud uses `parent`
    epic_name: str | None
    flagged: str
    start_date: str
    team_managed: bool = False


@dataclass(frozen=True)
class Repo:
    id: int
    group: str
    name: str
    role: str  # "api" (holds OpenAPI specs), "backend" (no spec), "ui"
    default_branch: str
    description: str
    group_id: int = 0
    created_at: str = "2023-02-06T09:12:44.000Z"

    @property
    def path(self) -> str:
        return f"{self.group}/{self.name}"


@dataclass
class Team:
    key: str  # Jira project key, Confluence space key
    name: str
    project_id: str
    project_name: str
    group: str
    workflow: Workflow
    ac_in_description: bool
    fields: FieldIds
    repos: list[Repo]
    space_id: int
    components: dict[str, str]  # name -> id
    themes: tuple[str, ...]
    people: list[Person] = field(default_factory=list)
    weight: float = 1.0

    def repos_with(self, role: str) -> list[Repo]:
        return [r for r in self.repos if r.role == role]


@dataclass(frozen=True)
class Person:
    index: int
    name: str
    username: str
    team: str
    time_zone: str
    utc_offset: float  # standard offset in hours, used for working hours and git dates
    account_id: str
    server_key: str
    confluence_key: str
    gitlab_id: int

    @property
    def email(self) -> str:
        return f"{self.username}@driftgate.example"


@dataclass
class Org:
    seed: int
    flavor: str
    teams: list[Team]
    people: list[Person]
    fields_cloud_shared: dict[str, str]

    @property
    def jira_base(self) -> str:
        return JIRA_BASE[self.flavor]

    @property
    def confluence_base(self) -> str:
        return CONFLUENCE_BASE[self.flavor]

    @property
    def zone(self) -> ZoneInfo:
        return VIEWER_ZONE[self.flavor]

    def team(self, key: str) -> Team:
        for t in self.teams:
            if t.key == key:
                return t
        raise KeyError(key)

    def repo_by_id(self, repo_id: int) -> Repo:
        for t in self.teams:
            for r in t.repos:
                if r.id == repo_id:
                    return r
        raise KeyError(repo_id)

    def team_of_repo(self, repo: Repo) -> Team:
        for t in self.teams:
            if repo in t.repos:
                return t
        raise KeyError(repo.path)

    def repos(self) -> list[Repo]:
        return [r for t in self.teams for r in t.repos]


FIRST = (
    "Amara",
    "Ben",
    "Chiara",
    "Dev",
    "Elif",
    "Farid",
    "Greta",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Lars",
    "Mei",
    "Nikolai",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tamar",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zofia",
    "Aidan",
    "Bea",
    "Carlos",
    "Dana",
    "Emil",
    "Fatima",
    "Goran",
    "Hana",
    "Ivo",
    "Jade",
    "Kofi",
    "Lena",
    "Marek",
    "Nadia",
)
LAST = (
    "Okafor",
    "Lindqvist",
    "Moretti",
    "Raman",
    "Yilmaz",
    "Haddad",
    "Schulz",
    "Tanaka",
    "Ferreira",
    "Becker",
    "Iyer",
    "Nilsson",
    "Chen",
    "Volkov",
    "Adeyemi",
    "Kapoor",
    "Laurent",
    "Garcia",
    "Berg",
    "Cohen",
    "Nair",
    "Horvat",
    "Zhou",
    "Ruiz",
    "Demir",
    "Nowak",
    "Walsh",
    "Keller",
    "Mendes",
    "Park",
    "Svensson",
    "Rahman",
    "Petrovic",
    "Kowalski",
    "Dubois",
    "Mensah",
    "Fischer",
    "Novak",
    "Sato",
    "Oliveira",
)
ZONES = (
    ("Europe/Berlin", 1.0),
    ("Europe/London", 0.0),
    ("America/New_York", -5.0),
    ("America/Los_Angeles", -8.0),
    ("Asia/Kolkata", 5.5),
    ("Europe/Warsaw", 1.0),
    ("America/Sao_Paulo", -3.0),
    ("Asia/Singapore", 8.0),
    ("Europe/Lisbon", 0.0),
)

# Team blueprints. Workflows and field ids differ per project on purpose.
_TEAMS = [
    dict(
        key="PAY",
        name="Payments",
        project_name="Payments",
        group="payments",
        weight=0.22,
        workflow=Workflow(
            "Backlog", "Selected for Development", ("In Dev", "Code Review", "QA"), "Released"
        ),
        ac_in_description=False,
        team_managed=False,
        repos=[
            ("payments-api", "api", "main", "Public payments API: charges, refunds, payouts."),
            ("ledger-service", "api", "master", "Double-entry ledger and settlement."),
            ("payments-batch", "backend", "main", "Nightly settlement and reconciliation jobs."),
            ("checkout-ui", "ui", "main", "Checkout and payment method screens."),
        ],
        themes=(
            "refunds",
            "payouts",
            "settlement",
            "chargebacks",
            "saved cards",
            "invoices",
            "payment retries",
            "3-D Secure",
            "reconciliation",
            "currency conversion",
            "payment links",
            "fee reports",
        ),
    ),
    dict(
        key="WEB",
        name="Web Experience",
        project_name="Web Experience",
        group="web",
        weight=0.2,
        workflow=Workflow("To Do", None, ("In Progress", "In Review"), "Done"),
        ac_in_description=False,
        team_managed=True,
        repos=[
            ("web-app", "ui", "main", "Customer web application."),
            ("bff-gateway", "api", "main", "Backend-for-frontend gateway."),
            ("web-workers", "backend", "main", "Background jobs for the web app."),
        ],
        themes=(
            "onboarding",
            "account settings",
            "search",
            "notifications",
            "dashboard",
            "order history",
            "wishlists",
            "product reviews",
            "dark mode",
            "accessibility",
        ),
    ),
    dict(
        key="DATA",
        name="Data Platform",
        project_name="Data Platform",
        group="data",
        weight=0.15,
        workflow=Workflow("Open", None, ("In Progress", "Review"), "Closed"),
        ac_in_description=True,
        team_managed=False,
        repos=[
            ("data-platform-api", "api", "main", "Query and export API over the warehouse."),
            ("etl-pipelines", "backend", "main", "Ingestion and transformation pipelines."),
            ("insights-ui", "ui", "main", "Self-service insights screens."),
        ],
        themes=(
            "data exports",
            "usage metrics",
            "retention cohorts",
            "schema registry",
            "data quality checks",
            "event ingestion",
            "cost attribution",
            "GDPR erasure",
        ),
    ),
    dict(
        key="OPS",
        name="Platform Operations",
        project_name="Platform Operations",
        group="platform",
        weight=0.13,
        workflow=Workflow("New", None, ("Working", "Verifying"), "Resolved"),
        ac_in_description=True,
        team_managed=False,
        repos=[
            ("status-api", "api", "main", "Service status and incident API."),
            ("platform-tools", "backend", "main", "Deployment and maintenance tooling."),
            ("ops-console", "ui", "main", "Operations console."),
        ],
        themes=(
            "incident timeline",
            "maintenance windows",
            "status page",
            "feature flags",
            "rate limiting",
            "audit logging",
            "secrets rotation",
            "on-call handover",
        ),
    ),
    dict(
        key="MOB",
        name="Mobile",
        project_name="Mobile Apps",
        group="mobile",
        weight=0.15,
        workflow=Workflow("Backlog", None, ("Doing", "Testing"), "Shipped"),
        ac_in_description=False,
        team_managed=True,
        repos=[
            ("mobile-bff", "api", "main", "API for the iOS and Android apps."),
            ("push-workers", "backend", "main", "Push notification delivery."),
            ("mobile-app", "ui", "main", "React Native app."),
        ],
        themes=(
            "push notifications",
            "offline mode",
            "biometric login",
            "in-app messages",
            "deep links",
            "app ratings",
            "loyalty card",
            "store locator",
        ),
    ),
    dict(
        key="IAM",
        name="Identity & Access",
        project_name="Identity and Access",
        group="identity",
        weight=0.15,
        workflow=Workflow("To Do", "Ready for Dev", ("Implementing", "Peer Review"), "Accepted"),
        ac_in_description=False,
        team_managed=False,
        repos=[
            ("auth-service", "api", "main", "OAuth2 / OIDC authorisation server."),
            ("iam-sync-jobs", "backend", "main", "Directory and SCIM synchronisation."),
            ("identity-admin-ui", "ui", "main", "Admin screens for roles and access."),
        ],
        themes=(
            "single sign-on",
            "SCIM provisioning",
            "role management",
            "API keys",
            "session management",
            "MFA recovery",
            "service accounts",
            "access reviews",
        ),
    ),
]

# Field ids: company-managed projects share one field per name; team-managed projects
# (Cloud) get their own field with the same name. Server instances have their own numbering.
_SHARED_IDS = {
    "cloud": dict(
        sprint="customfield_10110",
        rank="customfield_10119",
        story_points="customfield_10216",
        acceptance_criteria="customfield_10342",
        flagged="customfield_10121",
        start_date="customfield_10115",
        epic_link=None,
        epic_name=None,
    ),
    "server": dict(
        sprint="customfield_10400",
        rank="customfield_10401",
        story_points="customfield_10602",
        acceptance_criteria="customfield_10700",
        flagged="customfield_10403",
        start_date="customfield_10404",
        epic_link="customfield_10500",
        epic_name="customfield_10501",
    ),
}
_OWN_IDS = {  # per team-managed project: (story points, acceptance criteria)
    "cloud": {
        "WEB": ("customfield_10455", "customfield_10458"),
        "MOB": ("customfield_10521", "customfield_10524"),
    },
    "server": {
        "WEB": ("customfield_10811", "customfield_10812"),
        "MOB": ("customfield_10906", "customfield_10907"),
    },
}
_COMPONENTS = ("Frontend", "Backend", "API", "Infrastructure")


def _hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


def people_per_team(issues: int) -> int:
    return max(5, min(40, 4 + issues // 2500))


def build_org(seed: int, flavor: str, per_team: int) -> Org:
    """The organisation for one dataset; a pure function of its arguments."""
    if flavor not in ("cloud", "server"):
        raise ValueError(f"flavor must be 'cloud' or 'server', not {flavor!r}")
    rng = random.Random(f"{seed}:org")
    teams: list[Team] = []
    people: list[Person] = []
    used_names: set[str] = set()
    repo_id = 4101
    group_id = 310
    gitlab_user_id = 1843211
    component_id = 10210
    for t_index, spec in enumerate(_TEAMS):
        key = spec["key"]
        shared = _SHARED_IDS[flavor]
        own = _OWN_IDS[flavor].get(key)
        team_managed = bool(spec["team_managed"]) and own is not None
        fields = FieldIds(
            sprint=shared["sprint"],
            rank=shared["rank"],
            story_points=own[0] if own else shared["story_points"],
            acceptance_criteria=own[1] if own else shared["acceptance_criteria"],
            epic_link=shared["epic_link"],
            epic_name=shared["epic_name"],
            flagged=shared["flagged"],
            start_date=shared["start_date"],
            team_managed=team_managed and flavor == "cloud",
        )
        repos = []
        group_id += rng.randint(3, 40)
        for name, role, branch, desc in spec["repos"]:
            repos.append(
                Repo(
                    repo_id,
                    spec["group"],
                    name,
                    role,
                    branch,
                    desc,
                    group_id=group_id,
                    created_at=f"2023-0{1 + t_index}-1{t_index}T09:{10 + len(repos)}:44.512Z",
                )
            )
            repo_id += rng.randint(2, 90)
        components = {}
        for c in _COMPONENTS:
            components[c] = str(component_id)
            component_id += 1
        team = Team(
            key=key,
            name=spec["name"],
            project_id=str(10000 + t_index),
            project_name=spec["project_name"],
            group=spec["group"],
            workflow=spec["workflow"],
            ac_in_description=bool(spec["ac_in_description"]),
            fields=fields,
            repos=repos,
            space_id=98304 + 32768 * t_index + rng.randint(1, 2000),
            components=components,
            themes=tuple(spec["themes"]),
            weight=float(spec["weight"]),
        )
        for _ in range(per_team):
            while True:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                if f"{first} {last}" not in used_names:
                    break
            used_names.add(f"{first} {last}")
            zone, offset = rng.choice(ZONES)
            index = len(people)
            username = f"{first}.{last}".lower()
            # Server 8+ gives new accounts JIRAUSER keys; older accounts keep key == name.
            server_key = username if index % 3 else f"JIRAUSER{10100 + index}"
            account_id = (
                _hex(rng, 24)
                if index % 4
                else f"712020:{_hex(rng, 8)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 4)}-{_hex(rng, 12)}"
            )
            person = Person(
                index=index,
                name=f"{first} {last}",
                username=username,
                team=key,
                time_zone=zone,
                utc_offset=offset,
                account_id=account_id,
                server_key=server_key,
                confluence_key=_hex(rng, 32),
                gitlab_id=gitlab_user_id,
            )
            gitlab_user_id += rng.randint(1, 90000)
            people.append(person)
            team.people.append(person)
        teams.append(team)
    return Org(
        seed=seed,
        flavor=flavor,
        teams=teams,
        people=people,
        fields_cloud_shared=dict(_SHARED_IDS[flavor]),
    )
