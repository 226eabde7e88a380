"""logroll.yaml: every kind of invalid config fails with exit 2 naming the field; layering
file < LOGROLL_* < flags; presets round-trip through the YAML form; hostile output paths."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from logroll import config
from logroll.cli import app
from logroll.errors import ConfigError, LogrollError
from logroll.pipelines import PRESETS, declare, get_pipeline
from logroll.pipelines.base import Output

GOOD = """
pipelines:
  p:
    columns:
      - {name: id, type: string}
      - {name: ts, type: timestamp}
      - {name: n, type: integer, required: false}
    event_time: ts
    key: [id]
    outputs:
      - name: daily
        sql: SELECT count(*) AS rows_seen, sum(n) AS total FROM rows
        path: "daily/{date:%Y%m%d}.csv"
        order_by: [rows_seen]
"""


def variant(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def test_the_good_config_validates(tmp_path):
    f = tmp_path / "logroll.yaml"
    f.write_text(GOOD)
    r = invoke("validate", "--config", str(f))
    assert r.exit_code == 0, r.output
    assert r.output.strip() == f"{f}: ok (1 pipeline(s): p)"


# (name, config text, the one-line message expected after "logroll.yaml: ")
INVALID = [
    ("yaml syntax", "pipelines:\n  p: [unclosed\n", "line 3, column 1: not valid YAML"),
    ("not a mapping", "- a\n- b\n", "expected a mapping of settings and 'pipelines:', found list"),
    ("unknown top-level key", "pipeline: {}\n", "pipeline: unknown field; did you mean 'pipelines'?"),
    ("setting type", "lateness: soon\n" + GOOD, "lateness: Input should be a valid integer"),
    ("setting range", "lateness: -1\n" + GOOD, "lateness: Input should be greater than or equal to 0"),
    ("memory limit", "memory_limit: lots\n" + GOOD, "memory_limit: expected a size like 512MB or 2GB"),
    ("layout", "layout: '%Y'\n" + GOOD, "layout: layout '%Y' lacks %m, %d"),
    ("pipeline settings typo", variant("    key: [id]", "    key: [id]\n    settings: {sourc: x}"),
     "pipelines.p.settings.sourc: unknown field; did you mean 'source'?"),
    ("pipeline name", variant("  p:\n", "  my pipeline:\n"), "pipelines.my pipeline: pipeline names are"),
    ("no columns", variant("    columns:\n      - {name: id, type: string}\n      - {name: ts, type: timestamp}\n"
                           "      - {name: n, type: integer, required: false}\n", ""),
     "pipelines.p.columns: required field is missing"),
    ("empty columns", variant("    columns:\n      - {name: id, type: string}\n      - {name: ts, type: timestamp}\n"
                              "      - {name: n, type: integer, required: false}\n", "    columns: []\n"),
     "pipelines.p.columns: List should have at least 1 item"),
    ("column type", variant("type: integer", "type: int"),
     "pipelines.p.columns[2].type: Input should be 'string', 'integer', 'float', 'timestamp', 'date' or "
     "'boolean' (got 'int')"),
    ("column name missing", variant("{name: id, type: string}", "{type: string}"),
     "pipelines.p.columns[0].name: required field is missing"),
    ("column unknown field", variant("{name: id, type: string}", "{name: id, type: string, nullable: true}"),
     "pipelines.p.columns[0].nullable: unknown field"),
    ("column reserved name", variant("{name: id, type: string}", "{name: __id, type: string}"),
     "pipelines.p.columns[0].name: names starting with '__' are reserved for logroll"),
    ("column formats", variant("{name: ts, type: timestamp}", "{name: ts, type: timestamp, formats: [YYYY-MM-DD]}"),
     "pipelines.p.columns[1].formats: expected strftime formats like '%Y-%m-%d %H:%M:%S', got 'YYYY-MM-DD'"),
    ("duplicate column", variant("{name: n, type: integer, required: false}", "{name: id, type: integer}"),
     "pipelines.p.columns[2].name: column 'id' is declared twice"),
    ("event time missing", variant("    event_time: ts\n", ""), "pipelines.p.event_time: required field is missing"),
    ("event time undeclared", variant("event_time: ts", "event_time: when"),
     "pipelines.p.event_time: 'when' is not a declared column; declared: id, ts, n"),
    ("event time type", variant("event_time: ts", "event_time: id"),
     "pipelines.p.event_time: the event-time column must have type timestamp or date, 'id' is string"),
    ("event time mapping", variant("event_time: ts", "event_time: {formats: ['%Y']}"),
     "pipelines.p.event_time.column: required field is missing"),
    ("event time shape", variant("event_time: ts", "event_time: [ts]"),
     "pipelines.p.event_time: expected a column name, or a mapping with 'column' (and optional 'formats')"),
    ("key undeclared", variant("key: [id]", "key: [nope]"), "pipelines.p.key[0]: 'nope' is not a declared column"),
    ("input format", variant("    key: [id]", "    key: [id]\n    input: {format: xml}"),
     "pipelines.p.input.format: Input should be 'csv' or 'jsonl' (got 'xml')"),
    ("input delimiter", variant("    key: [id]", "    key: [id]\n    input: {delimiter: ';;'}"),
     "pipelines.p.input.delimiter: String should have at most 1 character (got ';;')"),
    ("input layout", variant("    key: [id]", "    key: [id]\n    input: {layout: '../%Y/%m/%d'}"),
     "pipelines.p.input.layout: layout '../%Y/%m/%d': date folders must be relative to the source"),
    ("check condition", variant("    key: [id]", "    key: [id]\n    checks: [{condition: 'nn > 0', reason: neg}]"),
     "pipelines.p.checks[0].condition: Binder Error: Referenced column \"nn\" not found"),
    ("no outputs", variant("    outputs:", "    outputz:"), "pipelines.p.outputz: unknown field; did you mean 'outputs'?"),
    ("output format", variant("        order_by: [rows_seen]", "        order_by: [rows_seen]\n        format: json"),
     "pipelines.p.outputs[0].format: Input should be 'csv' or 'parquet' (got 'json')"),
    ("output name", variant("name: daily", "name: ../daily"),
     "pipelines.p.outputs[0].name: expected a name of letters, digits, '_' or '-', starting with a letter"),
    ("sql syntax", variant("sql: SELECT count(*)", "sql: SELECT count(*) FROM FROM rows --"),
     "pipelines.p.outputs[0].sql: Parser Error: syntax error at or near \"FROM\""),
    ("sql not a query", variant("sql: SELECT count(*) AS rows_seen, sum(n) AS total FROM rows", "sql: DROP TABLE rows"),
     "pipelines.p.outputs[0].sql: expected a SELECT query, found DROP"),
    ("sql two statements", variant("FROM rows\n", "FROM rows; SELECT 1\n"),
     "pipelines.p.outputs[0].sql: expected one SELECT statement, found 2"),
    ("sql reads a file", variant("FROM rows\n", "FROM read_csv('/etc/passwd')\n"),
     "pipelines.p.outputs[0].sql: reads \"READ_CSV('/etc/passwd')\"; a transformation reads only the view 'rows'"),
    ("sql reads another table", variant("FROM rows\n", "FROM rows JOIN users USING (id)\n"),
     "pipelines.p.outputs[0].sql: reads 'users'; a transformation reads only the view 'rows'"),
    ("sql unknown column", variant("sum(n)", "sum(amount)"),
     "pipelines.p.outputs[0].sql: Binder Error: Referenced column \"amount\" not found"),
    ("order_by", variant("order_by: [rows_seen]", "order_by: [day]"),
     "pipelines.p.outputs[0].order_by[0]: 'day' is not an output column; columns: rows_seen, total"),
    ("path field", variant("daily/{date:%Y%m%d}.csv", "daily/{date:%Y%m%d}_{initials}.csv"),
     "pipelines.p.outputs[0].path: unknown field {initials}; use one of date"),
    ("path no day", variant("daily/{date:%Y%m%d}.csv", "daily/{date:%Y-%m}.csv"),
     "pipelines.p.outputs[0].path: every day would write the same file; put the day in it"),
    ("path attribute", variant("daily/{date:%Y%m%d}.csv", "{date.year}/{date:%m%d}.csv"),
     "pipelines.p.outputs[0].path: {date.year}: only plain fields like {date:%Y%m%d}"),
    ("path escapes", variant("daily/{date:%Y%m%d}.csv", "../../{date:%Y%m%d}.csv"),
     "pipelines.p.outputs[0].path: output 'daily': path '../../20210130.csv' would write outside the destination"),
    ("path absolute", variant("daily/{date:%Y%m%d}.csv", "/etc/{date:%Y%m%d}.csv"),
     "would write outside the destination"),
    ("path into state", variant("daily/{date:%Y%m%d}.csv", "_logroll/{date:%Y%m%d}.sqlite"),
     "pipelines.p.outputs[0].path: output 'daily': path '_logroll/20210130.sqlite' is not a file name below"),
    ("params value", variant("    key: [id]", "    key: [id]\n    params: {who: a/b}"),
     "pipelines.p.params.who: values are letters, digits, '_', '-' or '.' only"),
]  # fmt: skip


@pytest.mark.parametrize("text,message", [pytest.param(t, m, id=n) for n, t, m in INVALID])
def test_every_invalid_config_exits_2_naming_the_field(tmp_path, text, message):
    f = tmp_path / "logroll.yaml"
    f.write_text(text)
    r = invoke("validate", "--config", str(f))
    assert r.exit_code == 2, r.output
    line = r.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith(f"logroll: error: {f}: "), line
    assert message in line, line


def test_two_outputs_on_one_path_and_duplicate_names(tmp_path):
    text = GOOD + (
        '      - name: daily\n        sql: SELECT 1 AS x FROM rows\n        path: "daily/{date:%Y%m%d}.csv"\n'
    )
    with pytest.raises(ConfigError) as err:
        config.parse(text)
    msg = str(err.value)
    assert "pipelines.p.outputs[1].path: same file as output 'daily'" in msg
    assert "pipelines.p.outputs[1].name: output name 'daily' is used twice" in msg


def test_a_bad_config_stops_a_run_before_any_data_is_touched(cli, tmp_path):
    src = tmp_path / "raw" / "2021" / "01" / "30"
    src.mkdir(parents=True)
    (src / "a.csv").write_text("id,ts,n\n1,2021-01-30 10:00:00,5\n")
    f = tmp_path / "logroll.yaml"
    f.write_text(variant("sum(n)", "sum(amount)"))
    dest = tmp_path / "out"
    r = cli(
        "run", "p", "2021-01-30", "--config", str(f), "--source", str(tmp_path / "raw"), "--dest", str(dest)
    )
    assert r.code == 2
    assert r.err.strip() == (
        f'logroll: error: {f}: pipelines.p.outputs[0].sql: Binder Error: Referenced column "amount" not '
        "found in FROM clause!"
    )
    assert not dest.exists()


def test_bad_environment_and_missing_config_file_exit_2(tmp_path):
    f = tmp_path / "logroll.yaml"
    f.write_text(GOOD)
    r = invoke("validate", "--config", str(f), env={"LOGROLL_LATENESS": "soon"})
    assert r.exit_code == 2
    assert "environment: LOGROLL_LATENESS: Input should be a valid integer" in r.output
    r = invoke("validate", "--config", str(tmp_path / "nope.yaml"))
    assert r.exit_code == 2
    assert f"config file '{tmp_path / 'nope.yaml'}' does not exist" in r.output


def test_settings_layering_file_then_env_then_flags(tmp_path):
    f = tmp_path / "conf" / "logroll.yaml"
    f.parent.mkdir()
    f.write_text("source: raw\ndest: from-file\nlateness: 3\nmemory_limit: 1GB\n" + GOOD)
    _, opts = config.resolve("p", f, {}, env={})
    # relative paths in the file are relative to the file
    assert opts == {
        "source": str(f.parent / "raw"),
        "dest": str(f.parent / "from-file"),
        "lateness": 3,
        "memory_limit": "1GB",
    }
    env = {"LOGROLL_DEST": "/data/from-env", "LOGROLL_LATENESS": "2"}
    _, opts = config.resolve("p", f, {}, env=env)
    assert opts["dest"] == "/data/from-env" and opts["lateness"] == 2 and opts["memory_limit"] == "1GB"
    _, opts = config.resolve("p", f, {"dest": "from-flag", "lateness": None}, env=env)
    assert opts["dest"] == "from-flag" and opts["lateness"] == 2  # an absent flag is not an override
    # a pipeline's own settings beat the file's general ones, not the environment
    f.write_text("dest: general\n" + variant("    key: [id]", "    key: [id]\n    settings: {dest: mine}"))
    assert config.resolve("p", f, {}, env={})[1]["dest"] == str(f.parent / "mine")
    assert config.resolve("impressions", f, {}, env={})[1]["dest"] == str(f.parent / "general")
    assert config.resolve("p", f, {}, env={"LOGROLL_DEST": "/e"})[1]["dest"] == "/e"


def test_unknown_pipeline_suggests_a_close_name(tmp_path):
    f = tmp_path / "logroll.yaml"
    f.write_text(GOOD)
    with pytest.raises(LogrollError) as err:
        config.resolve("consolidat", f, {}, env={})
    assert "did you mean 'consolidate'?" in str(err.value)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_the_yaml_form(name):
    pipe = get_pipeline(name)
    text = declare.dump_yaml([pipe])
    back = config.parse(text).pipelines[name]
    assert back == pipe
    assert back.signature() == pipe.signature() and back.stage_signature() == pipe.stage_signature()


def test_impressions_and_consolidate_round_trip_together():
    pipes = [get_pipeline("impressions"), get_pipeline("consolidate")]
    cfg = config.parse(declare.dump_yaml(pipes))
    assert [cfg.pipelines[p.name] for p in pipes] == pipes


def test_validate_show_prints_a_preset_in_the_yaml_form(tmp_path):
    r = invoke("validate", "--show", "consolidate")
    assert r.exit_code == 0, r.output
    assert config.parse(r.output).pipelines["consolidate"] == get_pipeline("consolidate")


HOSTILE = [
    "../{date:%Y%m%d}.csv",
    "a/../../{date:%Y%m%d}.csv",
    "/etc/cron.d/{date:%Y%m%d}",
    "{date:%Y/../../..}/x{date:%d}.csv",
    "..\\{date:%Y%m%d}.csv",
    "C:/temp/{date:%Y%m%d}.csv",
    "s3://other-bucket/{date:%Y%m%d}.csv",
    "_logroll/catalog.sqlite",
    "_logroll/{date:%Y%m%d}.csv",
    "",
    "{date:%Y}/..",
    "{date.__class__.__init__.__globals__}",
    "{0}",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_output_paths_never_leave_the_destination(template):
    out = Output("x", "SELECT 1 FROM rows", template)
    with pytest.raises(ConfigError):
        out.render_path(dt.date(2021, 1, 30), {"initials": "GF"})


@pytest.mark.parametrize("template", [*HOSTILE, "{initials[0]}/{date:%Y%m%d}", "{date!r}/{date:%d}"])
def test_hostile_output_paths_fail_validation(tmp_path, template):
    text = variant('path: "daily/{date:%Y%m%d}.csv"', f"path: {template!r}".replace("\\", "\\\\"))
    text = text.replace("path: '", 'path: "').replace("'\n        order_by", '"\n        order_by')
    with pytest.raises(ConfigError) as err:
        config.parse(text.replace("    key: [id]", "    key: [id]\n    params: {initials: GF}"))
    assert "pipelines.p.outputs[0].path:" in str(err.value)


def test_safe_templates_render_below_the_destination():
    out = Output("x", "SELECT 1 FROM rows", "{date:%Y}/./{date:%m}/x_{date:%Y%m%d}_{initials}.csv")
    assert out.render_path(dt.date(2021, 1, 30), {"initials": "GF"}) == "2021/01/x_20210130_GF.csv"


def test_default_config_is_found_in_the_working_directory(cli, tmp_path):
    (tmp_path / "logroll.yaml").write_text(GOOD)
    r = cli("validate", cwd=tmp_path)
    assert r.code == 0, r.err
    assert r.out.strip() == f"{tmp_path / 'logroll.yaml'}: ok (1 pipeline(s): p)"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli("validate", cwd=elsewhere)
    assert r.code == 2
    assert r.err.strip() == "logroll: error: no logroll.yaml here: pass --config PATH (or set LOGROLL_CONFIG)"


def test_example_file_is_valid():
    cfg = config.load(Path(__file__).resolve().parents[1] / "examples" / "logroll.yaml", env={})
    assert sorted(cfg.pipelines) == ["device_users"]
