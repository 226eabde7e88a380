from conftest import tree_bytes, tree_mtimes


def test_run_then_rerun_is_nothing_to_do(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    first = cli(
        "run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest), "--json"
    )
    assert first.code == 0, first.err
    report = first.json()
    assert report["partitions_built"] == ["2021-01-30"]
    assert report["rows_read"] == report["rows_valid"] + report["rows_rejected"]
    before, mtimes = tree_bytes(dest), tree_mtimes(dest)
    again = cli("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest))
    assert again.code == 0, again.err
    assert "nothing to do" in again.out
    assert tree_bytes(dest) == before and tree_mtimes(dest) == mtimes
