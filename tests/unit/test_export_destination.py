"""POST /export names a folder inside the configured export folder, or gets a 400 reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumers.http_api import export_destination


def test_a_name_or_an_absolute_path_inside_the_root_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    assert export_destination(b'{"dir": "today"}', root) == (root / "today").resolve()
    inside = str(root / "a" / "b")
    assert export_destination(f'{{"dir": "{inside}"}}'.encode(), root) == Path(inside).resolve()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "must be a JSON object"),
        (b"[1]", 'non-empty string "dir"'),
        (b'{"dir": 3}', 'non-empty string "dir"'),
        (b'{"dir": ""}', 'non-empty string "dir"'),
        (b'{"dir": "x", "mode": "w"}', "unknown fields"),
        (b'{"dir": "../escape"}', "inside the export folder"),
        (b'{"dir": "/etc"}', "inside the export folder"),
        (b"[" * 100_000, "must be a JSON object"),
    ],
)
def test_anything_else_is_refused_with_a_reason(body: bytes, reason: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=reason):
        export_destination(body, tmp_path)
