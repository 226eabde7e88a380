"""`logroll status`: days built/dirty/failed with their numbers, the run in progress, recent runs."""

from __future__ import annotations

from logroll.catalog import Catalog
from logroll.catalog.lock import RunLock


def test_status_json_and_table(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    blocked = dest / "2021/01/30/daily_agg_20210130_Guy_Fawkes.csv"
    blocked.mkdir(parents=True)  # the 30th cannot be published: it fails
    (impressions_raw / "2021/01/29/[odd] name.csv").write_text("NOPE\n1\n")  # rejected whole
    args = ["--source", str(impressions_raw), "--dest", str(dest)]
    first = cli("run", "impressions", "2021-01-29", "--to", "2021-01-31", *args, "--json")
    assert first.code == 1

    res = cli("status", "impressions", *args, "--json")
    assert res.code == 0, res.err
    info = res.json()
    by_day = {d["day"]: d for d in info["days"]}
    assert by_day["2021-01-30"]["status"] == "failed" and by_day["2021-01-30"]["error"]
    built = by_day["2021-01-29"]
    assert built["status"] == "built" and built["error"] is None
    assert built["rows_in"] == built["rows_unique"] + built["duplicates"]
    assert by_day["2021-02-01"]["status"] == "dirty"  # early rows staged, day never built
    assert info["running"] is None
    assert [f["uri"].endswith("[odd] name.csv") for f in info["files"]["rejected"]] == [True]
    run = info["runs"][0]
    report = first.json()
    assert run["status"] == "failed" and run["days_failed"] == 1
    assert run["days_built"] == len(report["partitions_built"]) and run["rows_read"] == report["rows_read"]
    assert run["files_rejected"] == 1 and run["seconds"] > 0

    table = cli("status", "impressions", *args)
    assert table.code == 0, table.err
    assert "impressions: 2 days built, 1 dirty, 1 failed" in table.out
    assert "[odd] name.csv" in table.out  # shown as is, not eaten as markup
    assert "recent runs" in table.out


def test_status_shows_the_run_in_progress(cli, impressions_raw, tmp_path):
    dest = tmp_path / "results"
    assert (
        cli("run", "impressions", "2021-01-30", "--source", str(impressions_raw), "--dest", str(dest)).code
        == 0
    )
    catalog = Catalog(str(dest / "_logroll" / "catalog.sqlite"))
    with RunLock(catalog, "impressions"):
        info = cli("status", "impressions", "--dest", str(dest), "--json").json()
        table = cli("status", "impressions", "--dest", str(dest))
    catalog.close()
    assert info["running"]["pid"] > 0 and info["running"]["stale"] is None
    assert "running now: pid" in table.out
