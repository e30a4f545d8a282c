"""The one list of ingest formats: registered beside each reader, read by the CLI and the dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import build_parser
from training.data.layouts import LAYOUTS, formats, layout, read_layout


def test_the_four_shipped_formats_are_registered_in_order() -> None:
    assert formats() == ["folder", "kinetics", "ssv2", "jester"]


def test_the_cli_offers_exactly_the_registered_formats(capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["ingest", "src", "out", "--format", "csv"])
    assert "--format {folder,kinetics,ssv2,jester}" in capsys.readouterr().err


def test_an_unknown_format_is_refused_listing_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown ingest format 'csv'; expected one of folder, kinetics"):
        read_layout(tmp_path, "csv")


def test_a_format_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'folder' is registered twice"):
        layout("folder")(LAYOUTS["folder"])
