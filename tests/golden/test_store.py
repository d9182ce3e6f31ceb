from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from builders import ocr_result, quad

from harness.golden.store import (
    ForcedRefresh,
    Golden,
    GoldenMeta,
    GoldenStore,
    check_image_id,
    dumps_golden,
    dumps_meta,
    loads_golden,
    loads_meta,
)
from harness.model.results import Line
from harness.util.errors import UserError


def golden(image_id: str = "slip_001", sha: str | None = "ab" * 32) -> Golden:
    lines = (
        Line("中国工商银行 电子回单", 0.9987654321098765, quad(10, 10, 300, 20)),
        Line("金额：¥1,234.50", 0.1 + 0.2, quad(10, 40, 100, 20)),
        Line('quote " and \\ backslash', 1.0, quad(10, 70, 100, 20)),
    )
    return Golden(ocr_result(*lines, image_id=image_id), sha)


def meta(profile: str = "default") -> GoldenMeta:
    return GoldenMeta(
        profile=profile,
        stack={"paddle": "3.2.2", "cpu": {"isa_flags": ["avx2", "fma"]}},
        harness_version="0.1.0",
        created="2025-01-01T00:00:00Z",
        updated="2025-01-02T00:00:00Z",
        forced_refreshes=(ForcedRefresh("flaky scanner line", "2025-01-02T00:00:00Z", ("a", "b/c")),),
    )


def test_format_is_pinned() -> None:
    g = Golden(ocr_result(Line("金额", 0.5, quad(1, 2, 3, 4)), Line("x", 0.25, quad(0, 0, 1, 1)), image_id="a/b",
                          size=(8, 6)))
    assert dumps_golden(g) == (
        "{\n"
        '  "height": 6,\n'
        '  "image_id": "a/b",\n'
        '  "lines": [\n'
        '    {"poly": [[1, 2], [4, 2], [4, 6], [1, 6]], "score": 0.5, "text": "金额"},\n'
        '    {"poly": [[0, 0], [1, 0], [1, 1], [0, 1]], "score": 0.25, "text": "x"}\n'
        "  ],\n"
        '  "schema_version": 1,\n'
        '  "width": 8\n'
        "}\n"
    )
    empty = Golden(ocr_result(image_id="e", size=(1, 1)))
    assert '"lines": [],' in dumps_golden(empty)
    assert loads_golden(dumps_golden(empty), "e.json") == empty


def test_round_trip_is_byte_identical_and_one_line_per_text_line(tmp_path: Path) -> None:
    s = GoldenStore(tmp_path, "default")
    g = golden()
    path = s.write(g)
    first = path.read_bytes()
    loaded = s.load("slip_001")
    assert loaded == g
    assert loaded is not None and loaded.result.lines[1].score == 0.1 + 0.2  # repr precision survives
    s.write(loaded)
    assert path.read_bytes() == first
    text = first.decode("utf-8")
    assert text.endswith("}\n") and "中国工商银行" in text and "\\u" not in text
    line_rows = [row for row in text.splitlines() if row.lstrip().startswith('{"poly"')]
    assert len(line_rows) == len(g.result.lines)
    for row, line in zip(line_rows, g.result.lines, strict=True):
        assert json.loads(row.strip().rstrip(",")) == line.to_dict()
    top = json.loads(text)
    assert list(top) == sorted(top)


def test_int_score_is_written_as_float() -> None:
    g = Golden(ocr_result(Line("x", 1, quad(0, 0, 100, 20)), image_id="a", size=(1, 1)))
    assert '"score": 1.0' in dumps_golden(g)


def test_nested_ids_map_to_subdirectories(tmp_path: Path) -> None:
    s = GoldenStore(tmp_path, "default")
    s.write(golden("branch_a/2024/slip 1.jpg"))
    s.write(golden("top"))
    assert (tmp_path / "default" / "branch_a" / "2024" / "slip 1.jpg.json").is_file()
    s.write_meta(meta())
    assert s.ids() == ["branch_a/2024/slip 1.jpg", "top"]
    assert s.has("top") and not s.has("nope")
    assert s.load("nope") is None
    assert s.remove("top") and not s.remove("top")


@pytest.mark.parametrize("bad", ["", "../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ".hidden", "a/.b",
                                 "_meta", "x\x00y"])
def test_unsafe_ids_are_rejected(bad: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="image id"):
        check_image_id(bad)
    with pytest.raises(UserError):
        GoldenStore(tmp_path, "default").path_for(bad)


def test_unsafe_profile_name_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="profile name"):
        GoldenStore(tmp_path, "../x")


def test_meta_round_trip(tmp_path: Path) -> None:
    m = meta()
    assert loads_meta(dumps_meta(m), "_meta.json") == m
    s = GoldenStore(tmp_path, "default")
    assert s.meta() is None
    s.write_meta(m)
    assert GoldenStore(tmp_path, "default").meta() == m


def test_wrong_profile_directory_is_refused(tmp_path: Path) -> None:
    GoldenStore(tmp_path, "nightly").write_meta(meta("nightly"))
    (tmp_path / "nightly").rename(tmp_path / "default")
    s = GoldenStore(tmp_path, "default")
    with pytest.raises(UserError, match="made for profile 'nightly', not 'default'"):
        s.ids()
    with pytest.raises(UserError, match=r"_meta\.json"):
        s.load("anything")


def _corrupt(tmp_path: Path, text: str) -> str:
    path = tmp_path / "default" / "slip_001.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as err:
        GoldenStore(tmp_path, "default").load("slip_001")
    message = str(err.value)
    assert message.startswith(str(path))
    return message


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    text = dumps_golden(golden()).replace('"score": 1.0,', '"score": 1.0', 1)
    assert "invalid JSON at line 8, column " in _corrupt(tmp_path, text)


def test_deep_json_is_a_user_error(tmp_path: Path) -> None:
    assert _corrupt(tmp_path, "[" * 100_000 + "]" * 100_000).endswith(": invalid JSON: nested too deeply")


def test_wrong_schema_version(tmp_path: Path) -> None:
    text = dumps_golden(golden()).replace('"schema_version": 1', '"schema_version": 99')
    assert "schema_version 99 is not supported" in _corrupt(tmp_path, text)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.pop("width"), "width: missing"),
        (lambda d: d.update(width="800"), "width: expected int, got str '800'"),
        (lambda d: d["lines"][1].pop("score"), "lines[1].score: missing"),
        (lambda d: d["lines"][0].update(score="high"), "lines[0].score: expected a number"),
        (lambda d: d["lines"][2].update(poly=[[1, 2], [3, 4]]), "lines[2].poly: expected a list of at least 3"),
        (lambda d: d["lines"][2].update(poly=[[1.5, 2], [3, 4], [5, 6]]), "lines[2].poly"),
        (lambda d: d["lines"][0].update(txt="x"), "lines[0].txt: unknown key"),
        (lambda d: d.update(lines={}), "lines: expected a list"),
        (lambda d: d.update(image_id="other"), "does not match its file name"),
        (lambda d: d.pop("schema_version"), "schema_version: missing"),
    ],
)
def test_missing_or_mistyped_fields(tmp_path: Path, edit: object, expected: str) -> None:
    data = json.loads(dumps_golden(golden()))
    edit(data)  # type: ignore[operator]
    assert expected in _corrupt(tmp_path, json.dumps(data, ensure_ascii=False))


def test_top_level_not_an_object(tmp_path: Path) -> None:
    assert "expected a JSON object" in _corrupt(tmp_path, "[1, 2]\n")


def test_corrupt_meta_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "default" / "_meta.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"schema_version": 1, "profile": "default"}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"_meta.json: \w+: missing"):
        GoldenStore(tmp_path, "default").meta()


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = GoldenStore(tmp_path, "default")
    path = s.write(golden())
    before = path.read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    changed = Golden(ocr_result(image_id="slip_001"), None)
    with pytest.raises(OSError):
        s.write(changed)
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == ["slip_001.json"]
