"""compare on files the harness never wrote (contract §11, issue 21): each case measured on the
old code, and more, trying to get a false IDENTICAL past the gate or a cause left unnamed.

Every table here is built by hand with pyarrow; every expected line is written out by hand."""

import json
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from compare.__main__ import main

REPORT = "report"


def run(capsys, *args: str | Path) -> tuple[int, str, dict | None, Path]:
    """parity-compare ARGS in this process, reports under the first file's folder/report."""
    paths = [Path(a) for a in args if not str(a).startswith("-")]
    report_dir = (paths[0].parent if paths[0].is_file() else paths[0]) / REPORT
    code = main([*map(str, args), "--report-dir", str(report_dir)])
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    report_file = report_dir / "parity-report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else None
    return code, text, report, report_dir


def details(report: dict, side: str | None = None) -> list[str]:
    [group] = report["groups"]
    against = group["against_baseline"]
    return against[side or next(iter(against))]["details"]


def verdict(report: dict) -> str:
    [group] = report["groups"]
    return next(iter(group["against_baseline"].values()))["verdict"]


def write(path: Path, table: pa.Table, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **options)
    return path


def orders(**columns) -> pa.Table:
    """A small keyed table: id 1..3, with `columns` replaced or added."""
    base = {"id": pa.array([1, 2, 3], pa.int64()), "amount": pa.array([10, 20, 30], pa.int64())}
    return pa.table({**base, **columns})


def pair(tmp_path: Path, left: pa.Table, right: pa.Table, **options) -> tuple[Path, Path]:
    return (write(tmp_path / "a" / "old.parquet", left, **options),
            write(tmp_path / "b" / "new.parquet", right, **options))  # fmt: skip


def _one_error_line(text: str) -> str:
    (line,) = text.strip().splitlines()
    assert line.startswith("compare: error: "), line
    return line


# 1. Never a false IDENTICAL: nothing silently replaced, merged or skipped.


def _events_outputs(folder: Path, events: list[int]) -> None:
    """reference_output.parquet and prefect_output.parquet, metrics-shaped, in `folder`."""
    table = pa.table({"event_date": pa.array([0, 1], pa.date32()), "country": ["US", "FR"],
                      "event_type": ["view", "view"], "events": pa.array([5, 7], pa.int64())})
    write(folder / "reference_output.parquet", table)
    changed = table.set_column(3, "events", pa.array(events, pa.int64()))
    write(folder / "prefect_output.parquet", changed)


def test_a_folder_and_its_dated_subfolder_keying_alike_are_an_error_naming_both(capsys, tmp_path):
    out = tmp_path / "out"
    _events_outputs(out, [5, 8])  # differs
    _events_outputs(out / "date-2024-01-03", [5, 7])  # identical
    code, text, report, _ = run(capsys, out, out / "date-2024-01-03",
                                "--expect", "reference,prefect")  # fmt: skip
    assert code == 2 and report is None
    line = _one_error_line(text)
    wrapper = "prefect" if "prefect's" in line else "reference"
    assert f"{out / f'{wrapper}_output.parquet'} and " \
           f"{out / 'date-2024-01-03' / f'{wrapper}_output.parquet'} would both be " \
           f"{wrapper}'s run/metrics" in line  # fmt: skip


def test_two_day_folders_given_together_are_an_error_not_one_replacing_the_other(capsys, tmp_path):
    _events_outputs(tmp_path / "dayA", [5, 8])
    _events_outputs(tmp_path / "dayB", [5, 7])
    code, text, _, _ = run(capsys, tmp_path / "dayA", tmp_path / "dayB",
                           "--expect", "reference,prefect")  # fmt: skip
    assert code == 2
    line = _one_error_line(text)
    assert str(tmp_path / "dayA") in line and str(tmp_path / "dayB") in line


def test_a_folder_and_a_file_in_it_are_one_file_not_a_collision(capsys, tmp_path):
    _events_outputs(tmp_path / "out", [5, 7])
    code, text, _, _ = run(capsys, "--root", tmp_path / "out", tmp_path / "out",
                           tmp_path / "out" / "prefect_output.parquet",
                           "--expect", "reference,prefect")  # fmt: skip
    assert code == 0, text


def test_the_same_file_twice_is_refused(capsys, tmp_path):
    path = write(tmp_path / "a.parquet", orders())
    (tmp_path / "link.parquet").symlink_to(path)
    code, text, _, _ = run(capsys, path, tmp_path / "link.parquet", "--key", "id")
    assert code == 2
    assert "one file: comparing a file with itself proves nothing" in _one_error_line(text)


def test_two_columns_of_one_name_the_first_differing_is_no_content_equal(capsys, tmp_path):
    left = pa.Table.from_arrays([pa.array([1, 2]), pa.array([5, 6]), pa.array([9, 9])],
                                names=["id", "events", "events"])  # fmt: skip
    right = pa.Table.from_arrays([pa.array([1, 2]), pa.array([5, 7]), pa.array([9, 9])],
                                 names=["id", "events", "events"])  # fmt: skip
    a, b = pair(tmp_path, left, right)
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert verdict(report) == "schema-differs"
    assert details(report) == [
        f"column names repeated in {a}: events x2",
        "column names repeated in other: events x2",
        "rows: 2 vs 2 (keyed on id)",
        "column events (column 2): 1 cell(s) differ, e.g. ('2',): 6 vs 7",
    ]


@pytest.mark.parametrize("damage", ['{"versions": {"pyarrow": ', "[]", '{"versions": []}'])
def test_a_damaged_events_manifest_beside_a_differing_output_is_one_line(capsys, tmp_path, damage):
    out = tmp_path / "out"
    _events_outputs(out, [5, 8])
    manifest = out / "prefect_output.manifest.json"
    manifest.write_text(damage)
    code, _, report, _ = run(capsys, out, "--expect", "reference,prefect")
    assert code == 1  # the verdict on the output; the manifest only explains it
    notes = [line for line in details(report) if str(manifest) in line]
    assert len(notes) == 1
    assert "a damaged manifest" in notes[0] or "versions are not an object" in notes[0]
    assert "library versions not compared" in notes[0]


@pytest.mark.parametrize("damage", ['{"outputs": {"daily": {"key": ["id"', "[]",
                                    '{"outputs": {"daily": {"key": "id"}}}'])  # fmt: skip
def test_a_damaged_pipeline_manifest_is_one_line_exit_2(capsys, tmp_path, damage):
    root = tmp_path / "orders"
    for wrapper, amount in (("reference", 30), ("prefect", 31)):
        write(root / wrapper / "daily.parquet", orders(amount=pa.array([10, 20, amount])))
        (root / wrapper / "manifest.json").write_text(
            json.dumps({"pipeline": "orders", "outputs": {"daily": {"key": ["id"]}}}))
    (root / "prefect" / "manifest.json").write_text(damage)
    code, text, _, _ = run(capsys, root, "--layout", "pipeline", "--expect", "reference,prefect")
    assert code == 2
    assert f"{root / 'prefect' / 'manifest.json'}: a damaged manifest" in _one_error_line(text)


def test_a_dictionary_encoded_key_is_a_schema_difference_compared_by_value(capsys, tmp_path):
    plain = pa.table({"country": ["FR", "US"], "events": pa.array([1, 2], pa.int64())})
    encoded = plain.set_column(0, "country", plain["country"].dictionary_encode())
    a, b = pair(tmp_path, plain, encoded.set_column(1, "events", pa.array([1, 3], pa.int64())))
    code, _, report, _ = run(capsys, a, b, "--key", "country")
    assert code == 1
    assert verdict(report) == "schema-differs"
    assert details(report) == [
        "field country retyped: string vs dictionary<values=string, indices=int32, "
        "ordered=0> (dictionary-encoded: the values are compared decoded)",
        "rows: 2 vs 2 (keyed on country)",
        "column events: 1 cell(s) differ, e.g. ('US',): 2 vs 3",
    ]


# 2. Every difference names its cause.

NAN = float("nan")


def test_nan_in_the_same_cell_on_both_sides_is_equal(capsys, tmp_path):
    table = orders(score=pa.array([1.5, NAN, 2.5]))
    a, b = pair(tmp_path, table, table.set_column(1, "amount", pa.array([10, 20, 31])))
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert details(report) == ["rows: 3 vs 3 (keyed on id)",
                               "column amount: 1 cell(s) differ, e.g. ('3',): 30 vs 31"]


def test_nan_against_null_is_named_as_such(capsys, tmp_path):
    a, b = pair(tmp_path, orders(score=pa.array([1.5, NAN, 2.5])),
                orders(score=pa.array([1.5, None, 2.5], pa.float64())))  # fmt: skip
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert details(report)[1:] == [
        "column score: 1 cell(s) differ (1 NaN vs null), e.g. ('2',): nan vs None"
    ]


def test_negative_zero_against_zero_names_the_column(capsys, tmp_path):
    a, b = pair(tmp_path, orders(score=pa.array([0.0, 1.0, 2.0])),
                orders(score=pa.array([-0.0, 1.0, 2.0])))  # fmt: skip
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert verdict(report) == "rows-differ"
    assert details(report)[1:] == [
        "column score: 1 cell(s) differ (1 -0.0 vs 0.0), e.g. ('1',): 0.0 vs -0.0"
    ]


def test_field_metadata_is_a_schema_difference(capsys, tmp_path):
    table = orders()
    tagged = table.cast(table.schema.set(1, table.schema.field(1).with_metadata({"unit": "EUR"})))
    a, b = pair(tmp_path, table, tagged)
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert verdict(report) == "schema-differs"
    assert details(report) == ["field amount metadata: none vs {'unit': 'EUR'}"]


def test_a_difference_in_row_order_alone_is_named(capsys, tmp_path):
    table = orders()
    a, b = pair(tmp_path, table, table.take([0, 2, 1]))
    code, text, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert verdict(report) == "order-differs"
    assert details(report) == ["rows: 3 vs 3 (keyed on id)",
                               f"rows in another order: ('3',) comes after ('2',) in {a} (rows 1, "
                               f"2) but before it in other (rows 1, 2)"]
    assert "VERDICT: MISMATCH" in text


def test_row_order_alone_without_a_key_is_named_too(capsys, tmp_path):
    table = orders()
    a, b = pair(tmp_path, table, table.take([1, 0, 2]))
    code, _, report, _ = run(capsys, a, b)
    assert code == 1 and verdict(report) == "order-differs"
    assert details(report)[-1] == "the same rows in another order: the first that differs is row 0"


def test_compression_samples_come_from_the_column_that_differs(capsys, tmp_path):
    table = orders()
    a = write(tmp_path / "a" / "x.parquet", table, compression="zstd")
    b = write(tmp_path / "b" / "x.parquet", table, compression={"id": "zstd", "amount": "snappy"})
    code, _, report, _ = run(capsys, a, b)
    assert code == 1 and verdict(report) == "content-equal"
    assert "compression differs in 1 column(s) (amount); first in amount: ZSTD vs SNAPPY" in (
        details(report))


def test_statistics_samples_come_from_the_column_that_differs(capsys, tmp_path):
    table = orders()
    a = write(tmp_path / "a" / "x.parquet", table)
    b = write(tmp_path / "b" / "x.parquet", table, write_statistics=["id"])
    code, _, report, _ = run(capsys, a, b)
    assert code == 1 and verdict(report) == "content-equal"
    [line] = [d for d in details(report) if d.startswith("statistics")]
    assert line == ("statistics differs in 1 column(s) (amount); first in amount: "
                    "min=10 max=30 nulls=0 vs none")  # fmt: skip


def test_nfc_and_nfd_strings_differ_visibly(capsys, tmp_path):
    nfc = unicodedata.normalize("NFC", "café")
    nfd = unicodedata.normalize("NFD", "café")
    a, b = pair(tmp_path, orders(name=pa.array(["x", nfc, "y"])),
                orders(name=pa.array(["x", nfd, "y"])))  # fmt: skip
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert details(report)[1:] == [
        "column name: 1 cell(s) differ, e.g. ('2',): 'café' vs 'cafe\\u0301'"
    ]


def test_a_10_mb_cell_keeps_every_report_small(capsys, tmp_path):
    big = "x" * 10_000_000
    a, b = pair(tmp_path, orders(text=pa.array(["a", big, "c"])),
                orders(text=pa.array(["a", big + "!", "c"])))  # fmt: skip
    code, text, report, report_dir = run(capsys, a, b, "--key", "id")
    assert code == 1
    [line] = details(report)[1:]
    assert line == (f"column text: 1 cell(s) differ, e.g. ('2',): '{'x' * 199}…(10,000,000 "
                    f"characters) vs '{'x' * 199}…(10,000,001 characters)")  # fmt: skip
    for name in ("parity-report.md", "parity-report.json"):
        assert (report_dir / name).stat().st_size < 20_000
    assert len(text) < 20_000


def test_the_markdown_report_stays_under_1_mib_when_the_details_do_not(capsys, tmp_path):
    left = pa.table({"id": [1], **{f"c{n:02}": ["a" * 300] for n in range(60)}})
    right = pa.table({"id": [1], **{f"c{n:02}": ["b" * 300] for n in range(60)}})
    out = tmp_path / "out"
    for day in range(60):  # 60 outputs, each differing in every column
        name = f"{date(2024, 1, 1) + timedelta(days=day)}.parquet"
        write(out / "reference" / name, left)
        write(out / "prefect" / name, right)
    code, _, _, report_dir = run(capsys, out, "--expect", "reference,prefect", "--key", "id")
    assert code == 1
    assert (report_dir / "parity-report.json").stat().st_size > 2**20  # every detail is there
    markdown = (report_dir / "parity-report.md").read_text()
    assert len(markdown.encode()) < 2**20
    assert "more line(s) not shown: see parity-report.json" in markdown


# 3. Files given directly; keys; a multiset when there is none.


def test_files_named_like_a_native_backfill_are_compared_directly(capsys, tmp_path):
    a = write(tmp_path / "airflow_2024-01-03.parquet", orders())
    b = write(tmp_path / "dagster_2024-01-03.parquet", orders(amount=pa.array([10, 21, 30])))
    code, text, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert report["wrappers"] == [str(a), str(b)]
    assert report["groups"][0]["baseline"] == str(a)
    assert f"{b} vs {a}: rows-differ" in text
    assert details(report) == ["rows: 3 vs 3 (keyed on id)",
                               "column amount: 1 cell(s) differ, e.g. ('2',): 20 vs 21"]


def test_three_files_the_first_the_baseline_identical_ones_exit_0(capsys, tmp_path):
    paths = [write(tmp_path / f"{name}.parquet", orders()) for name in ("old", "new", "newer")]
    code, text, report, _ = run(capsys, *paths)
    assert code == 0, text
    assert report["verdict"] == "identical"
    assert text.strip().splitlines()[-1].startswith("VERDICT: IDENTICAL: 1 outputs")


def test_a_two_column_key(capsys, tmp_path):
    table = pa.table({"day": ["d1", "d1", "d2"], "shop": ["s1", "s2", "s1"], "n": [1, 2, 3]})
    a, b = pair(tmp_path, table, table.set_column(2, "n", pa.array([1, 2, 4])))
    code, _, report, _ = run(capsys, a, b, "--key", "day,shop")
    assert code == 1
    assert details(report) == ["rows: 3 vs 3 (keyed on day, shop)",
                               "column n: 1 cell(s) differ, e.g. ('d2', 's1'): 3 vs 4"]


def test_without_a_key_rows_are_a_multiset_and_the_verdict_says_so(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders(amount=pa.array([10, 21, 30])))
    code, _, report, _ = run(capsys, a, b)
    assert code == 1
    assert report["groups"][0]["key_columns"] is None
    assert details(report) == [
        "rows: 3 vs 3 (no key: compared as a multiset of rows, give --key col1,col2 to key them)",
        f"1 row(s) {a} only, e.g. (id=2, amount=20)",
        "1 row(s) other only, e.g. (id=2, amount=21)",
    ]


def test_a_multiset_counts_a_repeated_row(capsys, tmp_path):
    table = pa.table({"v": [1, 1, 2]})
    a, b = pair(tmp_path, table, pa.table({"v": [1, 2, 2]}))
    code, _, report, _ = run(capsys, a, b)
    assert code == 1
    assert details(report)[1:] == [f"1 row(s) {a} only, e.g. (v=1)",
                                   "1 row(s) other only, e.g. (v=2)"]


def test_a_key_column_a_file_lacks_is_one_line_exit_2(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders())
    code, text, _, _ = run(capsys, a, b, "--key", "order_id")
    assert code == 2
    assert _one_error_line(text) == f"compare: error: {a}: no column order_id (--key order_id)"


def test_one_wrapper_and_no_golden_is_no_verdict(capsys, tmp_path):
    _events_outputs(tmp_path / "out", [5, 7])
    code, text, _, _ = run(capsys, tmp_path / "out", "--expect", "reference")
    assert code == 2
    assert "one side is no verdict" in _one_error_line(text)


def test_expect_with_files_given_directly_is_a_usage_error(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders())
    code, text, _, _ = run(capsys, a, b, "--expect", "reference,prefect")
    assert code == 2
    assert "files given directly are named by their paths" in _one_error_line(text)


# More attempts at a false IDENTICAL.


def test_a_null_against_a_value_is_a_difference(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders(amount=pa.array([10, None, 30], pa.int64())))
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert "column amount: 1 cell(s) differ, e.g. ('2',): 20 vs None" in details(report)


def test_a_repeated_key_is_named_on_its_side(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders(id=pa.array([1, 2, 2])))
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert "1 key(s) duplicated in other, e.g. ('2',) x2" in details(report)
    assert f"1 row(s) {a} only, e.g. ('3',)" in details(report)


def test_an_extra_column_with_every_other_value_equal_is_a_schema_difference(capsys, tmp_path):
    a, b = pair(tmp_path, orders(), orders(extra=pa.array([0, 0, 0])))
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert details(report) == ["fields added: extra"]


def test_a_timestamp_unit_is_a_schema_difference(capsys, tmp_path):
    stamps = pa.array([0, 1000, 2000], pa.timestamp("us", tz="UTC"))
    a, b = pair(tmp_path, orders(at=stamps), orders(at=stamps.cast(pa.timestamp("ms", tz="UTC"))))
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert details(report) == ["field at retyped: timestamp[us, tz=UTC] vs timestamp[ms, tz=UTC]"]


def test_a_changed_value_in_a_list_column_is_found(capsys, tmp_path):
    a, b = pair(tmp_path, orders(tags=pa.array([["a"], ["b"], []])),
                orders(tags=pa.array([["a"], ["c"], []])))  # fmt: skip
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert "column tags: 1 cell(s) differ, e.g. ('2',): ['b'] vs ['c']" in details(report)


def test_other_row_groups_of_the_same_rows_are_content_equal_and_named(capsys, tmp_path):
    table = orders()
    a = write(tmp_path / "a" / "x.parquet", table)
    b = write(tmp_path / "b" / "x.parquet", table, row_group_size=2)
    code, _, report, _ = run(capsys, a, b, "--key", "id")
    assert code == 1
    assert verdict(report) == "content-equal"
    assert "row groups (rows each): [3] vs [2, 1]" in details(report)
