"""Moved to `dataengine.records.layout` (a layout is a record: stored in every episode); this alias keeps imports of
branches in flight working (delete it once issue 13's training work has landed)."""

from dataengine.records.layout import *  # noqa: F403
