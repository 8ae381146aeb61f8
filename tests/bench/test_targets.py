"""bench/targets.py judges a run's results file against issue 19's targets."""

import json

from bench import targets

MET = [
    {"scenario": "latency", "stack": "2 daphne", "ratio_p50": 2.18, "p99_ms": 10.4},
    {
        "scenario": "throughput",
        "stack": "2 daphne",
        "msg_per_s": 780.9,
        "ratio_throughput": 0.82,
        "lost": 0,
        "duplicates": 0,
    },
    {"scenario": "history", "stack": "2 daphne", "history_ws_p99_ms": 7.91},
    {
        "scenario": "connections",
        "stack": "1 daphne",
        "broadcast_s": 0.9,
        "broadcast_failures": 0,
        "rss_after_broadcast_mb": 377.0,
    },
    {"scenario": "crypto", "sign_us": 20},
]


def write(tmp_path, rows):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"machine": "x", "cpus": 2, "results": rows}))
    return path


def test_a_run_that_meets_every_target_exits_0(tmp_path, capsys):
    assert targets.main([str(write(tmp_path, MET))]) == 0
    out = capsys.readouterr().out
    assert out.count("met") == len(targets.TARGETS)
    assert "NOT MET" not in out


def test_each_target_missed_alone_makes_the_run_fail(tmp_path, capsys):
    for target in targets.TARGETS:
        rows = [dict(row) for row in MET]
        row = next(r for r in rows if r["scenario"] == target.scenario)
        # Just past the bound, in the direction that misses it.
        row[target.key] = target.bound + (1 if target.compare is not targets.AT_LEAST else -1)
        assert targets.main([str(write(tmp_path, rows))]) == 1, target
        assert f"NOT MET  {target.words}" in capsys.readouterr().out


def test_the_bounds_themselves_are_met():
    rows: dict[str, dict] = {}
    for t in targets.TARGETS:
        rows.setdefault(t.scenario, {"scenario": t.scenario})[t.key] = t.bound
    checks = targets.check_rows(rows.values())
    assert len(checks) == len(targets.TARGETS)
    assert all(check.met for check in checks)


def test_a_missing_figure_is_not_met():
    checks = targets.check_rows([{"scenario": "latency", "p99_ms": 9.0}])
    assert [c.met for c in checks] == [False, True]


def test_a_file_without_those_scenarios_is_refused(tmp_path, capsys):
    assert targets.main([str(write(tmp_path, [MET[-1]]))]) == 1
    assert "no latency" in capsys.readouterr().out


def test_a_ratio_is_judged_from_its_figures_not_its_rounding():
    row = {"scenario": "latency", "p99_ms": 10.0, "ratio_p50": 2.5}
    assert all(c.met for c in targets.check_rows([{**row, "p50_ms": 5.4, "floor_p50_ms": 2.16}]))
    late = targets.check_rows([{**row, "p50_ms": 5.41, "floor_p50_ms": 2.16}])
    assert [c.met for c in late] == [False, True] and late[0].value == 2.5046
