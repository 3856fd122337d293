"""docs/monitoring/ against the node it watches.

An alert on a metric that does not exist never fires, and a dashboard panel on
one stays empty without saying why: so every metric the Grafana dashboard and
the Prometheus rules use must be in a running validator's /metrics. The rules
must also pass promtool's own check and their unit tests (alerts.test.yml),
which feed each alert a healthy and a failing validator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.localnet import make_network, running

MONITORING = Path(__file__).resolve().parent.parent / "docs" / "monitoring"
DASHBOARD = json.loads((MONITORING / "somnode-dashboard.json").read_text(encoding="utf-8"))
RULES = yaml.safe_load((MONITORING / "somnode-alerts.yml").read_text(encoding="utf-8"))
METRIC_NAME = re.compile(r"\bsomnode_[a-z0-9_]+\b")
# What an operator must hear about: no commits, too few links for a quorum, no room for
# transactions, this validator's votes missing from the blocks, no room on the disk.
REQUIRED_ALERTS = {"SomnodeHeightStalled", "SomnodePeersBelowQuorum", "SomnodeMempoolFull",
                   "SomnodeMissingPrecommits", "SomnodeDiskNearlyFull"}


def _panels(panels: list[dict]) -> list[dict]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))
    return found


def _dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in _panels(DASHBOARD["panels"]) for target in panel.get("targets", [])]


def _rules() -> list[dict]:
    return [rule for group in RULES["groups"] for rule in group["rules"]]


def _used_metrics() -> set[str]:
    return {name for expr in _dashboard_exprs() + [rule["expr"] for rule in _rules()]
            for name in METRIC_NAME.findall(expr)}


def test_the_dashboard_is_well_formed():
    panels = _panels(DASHBOARD["panels"])
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    variables = {variable["name"] for variable in DASHBOARD["templating"]["list"]}
    assert {"datasource", "instance"} <= variables
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells
        if panel["type"] == "row":
            continue
        assert panel["title"] and panel["description"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert 'job="somnode"' in target["expr"] and 'instance=~"$instance"' in target["expr"], target["expr"]


def test_the_rules_cover_what_an_operator_must_hear_about():
    rules = _rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert REQUIRED_ALERTS <= set(names)
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_every_metric_the_dashboard_and_the_rules_use_is_in_a_running_validators_metrics(tmp_path):
    used = _used_metrics()
    assert len(used) > 15, "the metric name pattern no longer finds the metrics in the expressions"
    network = make_network(tmp_path / "net", validators=1)
    with running(network) as net:
        net.wait_height(3)
        deadline = time.monotonic() + 60
        while True:  # some gauges are first set by the node's once-a-second refresh
            samples = _samples(net.api_urls[0])
            if used <= {name for name, _ in samples} or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert sorted(used - {name for name, _ in samples}) == []
    # And they are fed: a lone validator's precommit is in each of its certificates, it alone is a
    # quorum, and its data directory sits on a filesystem with room.
    assert samples[("somnode_own_precommits_total", (("outcome", "included"),))] >= 2
    assert samples[("somnode_own_precommits_total", (("outcome", "missing"),))] == 0
    # Alone, the validator holds all the power (100, as somnode init gives it); a quorum is 67 of it.
    assert samples[("somnode_voting_power_connected", ())] == 100
    assert samples[("somnode_voting_power_quorum", ())] == 67
    assert 0 < samples[("somnode_data_dir_free_bytes", ())] <= samples[("somnode_data_dir_size_bytes", ())]
    assert samples[("somnode_mempool_max_transactions", ())] > 0


def _samples(url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of the node's /metrics, by name and sorted labels."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode("utf-8")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def _promtool() -> str:
    found = shutil.which("promtool") or shutil.which("promtool", path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing under CI: scripts/_test_tools.sh should have fetched it")
        pytest.skip("promtool is not installed (scripts/_test_tools.sh fetches it into the venv)")
    return found


def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    promtool = _promtool()
    for command in (["check", "rules", "somnode-alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *command], cwd=MONITORING, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_unit_tests_exercise_every_required_alert():
    cases = yaml.safe_load((MONITORING / "alerts.test.yml").read_text(encoding="utf-8"))["tests"]
    fired = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]}
    quiet = {check["alertname"] for case in cases for check in case["alert_rule_test"] if not check["exp_alerts"]}
    assert REQUIRED_ALERTS <= fired and REQUIRED_ALERTS <= quiet
