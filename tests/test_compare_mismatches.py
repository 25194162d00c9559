"""`parity-compare --mismatches DIR` (contract §11): every differing and one-sided row as
Parquet, one file per output and compared side, sorted by the key, written atomically.

Every input is built by hand with pyarrow and every expected row is written out by hand:
none is computed by the code under test."""

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import compare.mismatches
from tests.test_compare_adversarial import run as run_compare


def write(path: Path, table: pa.Table) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def run(capsys, *args: str | Path) -> tuple[int, str, dict | None]:
    """parity-compare ARGS in this process (the adversarial table's runner), without its
    report folder."""
    return run_compare(capsys, *args)[:3]


def rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def orders_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Keyed on id, in no order: id 2 differs in amount, 3 in note, 0 is the baseline's
    alone, 5 the other's alone, 1 is equal."""
    old = pa.table({"id": pa.array([3, 0, 1, 2], pa.int64()),
                    "amount": pa.array([30, 40, 10, 20], pa.int64()),
                    "note": ["c", "d", "a", "b"]})  # fmt: skip
    new = pa.table({"id": pa.array([3, 5, 1, 2], pa.int64()),
                    "amount": pa.array([30, 50, 10, 21], pa.int64()),
                    "note": ["C", "e", "a", "b"]})  # fmt: skip
    return write(tmp_path / "old.parquet", old), write(tmp_path / "new.parquet", new)


ORDERS_MISMATCHES = [
    {"mismatch": "baseline only", "id": 0, "amount_baseline": 40, "amount_other": None,
     "note_baseline": "d", "note_other": None},
    {"mismatch": "differs", "id": 2, "amount_baseline": 20, "amount_other": 21,
     "note_baseline": "b", "note_other": "b"},
    {"mismatch": "differs", "id": 3, "amount_baseline": 30, "amount_other": 30,
     "note_baseline": "c", "note_other": "C"},
    {"mismatch": "other only", "id": 5, "amount_baseline": None, "amount_other": 50,
     "note_baseline": None, "note_other": "e"},
]  # fmt: skip


def test_keyed_rows_that_differ_or_are_one_sided_are_written_sorted_by_the_key(capsys,
                                                                                tmp_path):
    old, new = orders_pair(tmp_path)
    out = tmp_path / "mismatches"
    code, text, report = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 1, text
    written = out / "old.new.parquet"
    assert rows(written) == ORDERS_MISMATCHES
    metadata = pq.read_schema(written).metadata
    assert metadata[b"parity.baseline"] == str(old).encode()
    assert metadata[b"parity.other"] == str(new).encode()
    assert metadata[b"parity.key"] == b"id"
    [group] = report["groups"]
    assert group["against_baseline"][str(new)]["mismatches"] == {
        "path": str(written), "rows": 4, "differs": 2, "baseline only": 1, "other only": 1}
    assert f"mismatches: 4 row(s) in {written}" in text


def test_the_same_inputs_give_the_same_bytes(capsys, tmp_path):
    old, new = orders_pair(tmp_path)
    for name in ("first", "second"):
        run(capsys, old, new, "--key", "id", "--mismatches", tmp_path / name)
    first, second = (tmp_path / name / "old.new.parquet" for name in ("first", "second"))
    assert first.read_bytes() == second.read_bytes()


def test_without_a_key_the_extra_copies_of_a_row_are_one_sided_rows(capsys, tmp_path):
    # (1, a) twice in the baseline and once in the other; (2, b) only in the baseline;
    # (3, c) only in the other; (4, d) on both sides once.
    old = write(tmp_path / "old.parquet", pa.table({"n": pa.array([1, 2, 1, 4], pa.int64()),
                                                    "s": ["a", "b", "a", "d"]}))  # fmt: skip
    new = write(tmp_path / "new.parquet", pa.table({"n": pa.array([4, 3, 1], pa.int64()),
                                                    "s": ["d", "c", "a"]}))  # fmt: skip
    out = tmp_path / "mismatches"
    code, text, _ = run(capsys, old, new, "--mismatches", out)
    assert code == 1, text
    written = out / "old.new.parquet"
    assert rows(written) == [
        {"mismatch": "baseline only", "n_baseline": 1, "n_other": None, "s_baseline": "a",
         "s_other": None},
        {"mismatch": "baseline only", "n_baseline": 2, "n_other": None, "s_baseline": "b",
         "s_other": None},
        {"mismatch": "other only", "n_baseline": None, "n_other": 3, "s_baseline": None,
         "s_other": "c"},
    ]  # fmt: skip
    assert pq.read_schema(written).metadata[b"parity.key"] == b""


def test_null_keys_never_pair_and_a_repeated_key_pairs_with_each_row(capsys, tmp_path):
    old = write(tmp_path / "old.parquet", pa.table({
        "id": pa.array([None, 1, 1], pa.int64()), "v": pa.array([7, 10, 11], pa.int64())}))
    new = write(tmp_path / "new.parquet", pa.table({
        "id": pa.array([1, None], pa.int64()), "v": pa.array([10, 7], pa.int64())}))
    out = tmp_path / "mismatches"
    code, text, _ = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 1, text
    assert rows(out / "old.new.parquet") == [
        {"mismatch": "differs", "id": 1, "v_baseline": 11, "v_other": 10},  # baseline row 2
        {"mismatch": "baseline only", "id": None, "v_baseline": 7, "v_other": None},
        {"mismatch": "other only", "id": None, "v_baseline": None, "v_other": 7},
    ]  # fmt: skip


def test_each_side_keeps_its_own_types_and_columns(capsys, tmp_path):
    old = write(tmp_path / "old.parquet", pa.table({
        "id": pa.array([1, 2], pa.int64()), "qty": pa.array([5, 6], pa.int32()),
        "price": pa.array([1.5, 2.5]), "gone": ["x", "y"]}))  # fmt: skip
    new = write(tmp_path / "new.parquet", pa.table({
        "id": pa.array([1, 2], pa.int64()), "qty": pa.array([5, 6], pa.int64()),
        "price": pa.array([1.5, -2.5]), "added": [True, False]}))  # fmt: skip
    out = tmp_path / "mismatches"
    code, text, report = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 1, text
    assert next(iter(report["groups"][0]["against_baseline"].values()))["verdict"] == \
        "schema-differs"  # fmt: skip
    table = pq.read_table(out / "old.new.parquet")
    assert table.to_pylist() == [
        {"mismatch": "differs", "id": 2, "qty_baseline": 6, "price_baseline": 2.5,
         "price_other": -2.5, "gone_baseline": "y", "qty_other": 6, "added_other": False},
    ]  # fmt: skip
    assert table.schema.field("qty_baseline").type == pa.int32()
    assert table.schema.field("qty_other").type == pa.int64()


def test_a_folders_outputs_go_under_their_key_one_file_per_wrapper(capsys, tmp_path):
    folder = tmp_path / "out"
    metrics = pa.table({"event_date": pa.array([0, 1], pa.date32()), "country": ["US", "FR"],
                        "event_type": ["view", "view"], "events": pa.array([5, 7], pa.int64())})
    write(folder / "reference_output.parquet", metrics)
    write(folder / "prefect_output.parquet",
          metrics.set_column(3, "events", pa.array([5, 8], pa.int64())))
    write(folder / "airflow_output.parquet", metrics)
    out = tmp_path / "mismatches"
    code, text, _ = run(capsys, folder, "--expect", "reference,prefect,airflow",
                        "--mismatches", out)
    assert code == 1, text
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "run", "run/metrics.prefect.parquet"]
    assert rows(out / "run" / "metrics.prefect.parquet") == [
        {"mismatch": "differs", "event_date": pa.scalar(1, pa.date32()).as_py(),
         "country": "FR", "event_type": "view", "events_baseline": 7, "events_other": 8}]


def test_a_pair_that_no_longer_differs_loses_the_file_an_earlier_run_left(capsys, tmp_path):
    old, new = orders_pair(tmp_path)
    out = tmp_path / "mismatches"
    run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert (out / "old.new.parquet").exists()
    new.write_bytes(old.read_bytes())
    code, text, _ = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 0, text
    assert list(out.iterdir()) == []


def test_a_failed_write_leaves_no_partial_file_and_the_earlier_one_as_it_was(
        capsys, tmp_path, monkeypatch):
    old, new = orders_pair(tmp_path)
    out = tmp_path / "mismatches"
    run(capsys, old, new, "--key", "id", "--mismatches", out)
    before = (out / "old.new.parquet").read_bytes()

    def half_then_fail(table, where, **options):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    write(new, pa.table({"id": pa.array([1], pa.int64()), "amount": pa.array([1], pa.int64()),
                         "note": ["z"]}))  # other rows to write, and the writer fails
    monkeypatch.setattr(compare.mismatches.pq, "write_table", half_then_fail)
    code, text, _ = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 2
    (line,) = text.strip().splitlines()
    assert line.startswith("compare: error: ") and "No space left on device" in line, line
    assert sorted(os.listdir(out)) == ["old.new.parquet"]  # no temporary left either
    assert (out / "old.new.parquet").read_bytes() == before


def _one_error_line(text: str) -> str:
    (line,) = text.strip().splitlines()
    assert line.startswith("compare: error: "), line
    return line


def test_a_dir_that_is_a_file_is_one_line_and_exit_2(capsys, tmp_path):
    old, new = orders_pair(tmp_path)
    taken = tmp_path / "taken"
    taken.write_text("mine")
    code, text, report = run(capsys, old, new, "--key", "id", "--mismatches", taken)
    assert code == 2
    assert _one_error_line(text) == f"compare: error: {taken}: not a folder (--mismatches DIR)"
    assert report is None
    assert taken.read_text() == "mine"


def test_a_dir_that_cannot_be_created_is_one_line_and_exit_2(capsys, tmp_path):
    old, new = orders_pair(tmp_path)
    (tmp_path / "taken").write_text("mine")
    code, text, _ = run(capsys, old, new, "--key", "id", "--mismatches", tmp_path / "taken" / "d")
    assert code == 2
    assert "cannot create the folder (--mismatches DIR)" in _one_error_line(text)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_dir_that_is_not_writable_is_one_line_and_exit_2(capsys, tmp_path):
    old, new = orders_pair(tmp_path)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    code, text, _ = run(capsys, old, new, "--key", "id", "--mismatches", locked)
    assert code == 2
    assert _one_error_line(text) == f"compare: error: {locked}: not writable (--mismatches DIR)"


def test_column_names_that_would_collide_are_an_error_not_a_lost_column(capsys, tmp_path):
    # The key `amount_other` and the other side's `amount`, written as amount_other.
    table = pa.table({"amount_other": pa.array([1, 2], pa.int64()),
                      "amount": pa.array([1, 2], pa.int64())})  # fmt: skip
    old = write(tmp_path / "old.parquet", table)
    new = write(tmp_path / "new.parquet", table.set_column(1, "amount", pa.array([1, 3])))
    code, text, _ = run(capsys, old, new, "--key", "amount_other", "--mismatches",
                        tmp_path / "m")
    assert code == 2
    assert "the mismatch columns amount_other would be named alike" in _one_error_line(text)


def test_two_pairs_that_would_share_a_file_name_are_an_error(capsys, tmp_path, monkeypatch):
    table = pa.table({"id": pa.array([1], pa.int64()), "v": pa.array([1], pa.int64())})
    changed = table.set_column(1, "v", pa.array([2], pa.int64()))
    old = write(tmp_path / "old.parquet", table)
    first = write(tmp_path / "a_b" / "new.parquet", changed)
    second = write(tmp_path / "a" / "b_new.parquet", changed)
    monkeypatch.chdir(tmp_path)
    code, text, _ = run(capsys, "old.parquet", "a_b/new.parquet", "a/b_new.parquet", "--key",
                        "id", "--mismatches", "m")
    assert (first.exists(), second.exists(), old.exists()) == (True, True, True)
    assert code == 2
    assert "would be one file" in _one_error_line(text)


def test_a_row_order_difference_alone_writes_no_file(capsys, tmp_path):
    table = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    old = write(tmp_path / "old.parquet", table)
    new = write(tmp_path / "new.parquet", table.take([2, 0, 1]))
    out = tmp_path / "mismatches"
    (out).mkdir()
    (out / "old.new.parquet").write_bytes(b"an earlier run's")
    code, text, report = run(capsys, old, new, "--key", "id", "--mismatches", out)
    assert code == 1, text
    assert next(iter(report["groups"][0]["against_baseline"].values()))["verdict"] == \
        "order-differs"  # fmt: skip
    assert list(out.iterdir()) == []
