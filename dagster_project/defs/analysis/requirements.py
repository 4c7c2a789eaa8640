"""Analysis, groundwork: the subjects gates and gap rules judge, and when each
requirement held for them, all as of the run's as_of."""

from dagster_project.sql_assets import sql_table_asset

SUBJECTS = ["analysis", "subjects"]

analysis_subjects = sql_table_asset(
    "analysis",
    "subjects",
    deps=[
        ["chain", "work_items"],
        ["chain", "status_transitions"],
        ["chain", "merge_requests"],
        ["chain", "mr_mentions"],
    ],
    description="Issues and merge requests as they stood at as_of (status category, MR "
    "state, labels, epics, linked issues): what gates and gap rules apply to.",
)
analysis_linked_pages = sql_table_asset(
    "analysis",
    "linked_pages",
    deps=[
        ["chain", "pages"],
        ["chain", "work_items"],
        ["chain", "page_mentions"],
        ["chain", "remote_links"],
        ["chain", "page_labels"],
    ],
    description="Confluence pages linked to each issue at as_of (whole-word mention or "
    "remote link), per label, with the moment the link appeared.",
)
analysis_text_timelines = sql_table_asset(
    "analysis",
    "text_timelines",
    deps=[["chain", "work_items"], ["chain", "field_changes"]],
    description="Each issue's acceptance-criteria field and description over time, "
    "replayed from the complete changelog: the history gates are judged on.",
)
analysis_requirement_spans = sql_table_asset(
    "analysis",
    "requirement_spans",
    deps=[
        SUBJECTS,
        ["analysis", "text_timelines"],
        ["analysis", "linked_pages"],
        ["chain", "page_versions"],
        ["chain", "pages"],
        ["chain", "merge_requests"],
        ["chain", "mr_changes"],
        ["chain", "mr_mentions"],
        ["chain", "work_items"],
        ["chain", "repository_files"],
    ],
    description="When each requirement (acceptance criteria, edge-case matrix, PRD, "
    "runbook, auth model, contract tests, ...) held for each subject: one row per span, "
    "with the evidence that satisfied it. One SQL file per requirement.",
)
analysis_waivers = sql_table_asset(
    "analysis",
    "waivers",
    deps=[SUBJECTS, ["chain", "field_changes"]],
    description="Accepted exceptions from the policy file and from Jira waiver labels, "
    "with owner, reason, expiry and whether each is active at as_of.",
)
