"""Confluence REST API emulator (skeleton: routes are registered in register())."""

from __future__ import annotations

from dagster_project.sandbox.dataset import Dataset
from dagster_project.sandbox.emulator.http import Router


class ConfluenceApi:
    def __init__(self, dataset: Dataset, **options: object):
        self.dataset = dataset

    def register(self, router: Router) -> None:
        pass
