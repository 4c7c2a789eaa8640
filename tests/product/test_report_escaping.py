"""Untrusted text from the three tools is text in the report, never markup or a link."""

from dagster_project.lib.report_html import render, safe_url


def test_source_text_is_escaped_and_unsafe_links_are_dropped():
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    finding = {"rule_id": "epic_without_prd", "severity": "high", "subject_key": hostile,
               "summary": hostile, "web_url": "javascript:alert(3)", "waived": False}  # fmt: skip
    gate = {"gate_id": "ui_gate", "subject_key": "WEB-1", "subject_title": hostile,
            "status": "violated", "triggered_at": "2026-01-01 10:00", "missing": hostile,
            "web_url": "https://jira.example.com/browse/WEB-1"}  # fmt: skip
    html = render(
        "report.html.j2",
        title="t",
        as_of="2026-01-01",
        sources=[("Jira", "https://jira.example.com")],
        cap=50,
        completeness=[],
        quarantine=[],
        missing_total=0,
        quarantined_total=0,
        headline={
            "gate_compliance": 0.5,
            "gates_judged": 2,
            "open_gaps": 1,
            "open_drift": 0,
            "rework_share": None,
        },  # fmt: skip
        gates=[
            {
                "gate_id": "ui_gate",
                "title": hostile,
                "compliant": 1,
                "late": 0,
                "violated": 1,
                "waived": 0,
                "not_applicable": 0,
            }
        ],  # fmt: skip
        gate_teams=[],
        bypassed=[gate],
        gaps=[finding],
        drift=[],
        rework=[],
        root_causes=[],
    )
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "javascript:" not in html.replace("&lt;", "")  # no javascript: link target
    assert '<a href="https://jira.example.com/browse/WEB-1">WEB-1</a>' in html
    assert safe_url(" JavaScript:alert(1)") is None and safe_url("data:text/html,x") is None
