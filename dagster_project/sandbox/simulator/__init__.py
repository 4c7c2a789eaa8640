"""The sandbox simulator: a believable organisation written as a format-v1 dataset.

``generate`` writes Jira, GitLab and Confluence payloads plus ``truth.json`` (the
situations injected, not served); ``advance`` moves an existing dataset forward in time.
"""

from dagster_project.sandbox.simulator.advance import AdvanceSummary, advance
from dagster_project.sandbox.simulator.generate import SCALES, GenerateSummary, generate

__all__ = ["SCALES", "AdvanceSummary", "GenerateSummary", "advance", "generate"]
