#!/usr/bin/env python3
"""Checks the Grafana dashboard and the alert rules against the metrics the gateway exports.

Usage: check_dashboard.py DASHBOARD.json RULES.yml OUT-RULES.yml

- The dashboard must be well-formed JSON with a Prometheus data-source variable that every
  panel and query uses.
- Every metric named in a dashboard query or an alert rule must be one the gateway exports:
  the names are read from gateway/src/telemetry.rs (its `pub const NAME: &str =
  "twofold_..."` lines; histograms, declared with `describe_histogram!`, also give their
  `_bucket`, `_sum` and `_count` series). `up` is allowed too (Prometheus's own).
- OUT-RULES.yml receives every dashboard query as a recording rule, with Grafana's
  variables replaced, for `promtool check rules` to parse as PromQL.
"""

import json
import re
import sys
from pathlib import Path

import yaml

TELEMETRY = Path(__file__).resolve().parent.parent / "gateway" / "src" / "telemetry.rs"

# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "rate", "irate", "increase", "delta", "idelta",
    "histogram_quantile", "label_values", "abs", "clamp_min", "clamp_max", "vector", "scalar",
    "time", "absent", "sort", "sort_desc", "deriv", "predict_linear", "resets", "changes",
    "avg_over_time", "max_over_time", "min_over_time", "sum_over_time", "inf", "nan",
}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}


def exported_metrics():
    src = TELEMETRY.read_text()
    consts = dict(re.findall(r'pub const (\w+): &str = "(twofold_\w+)";', src))
    if not consts:
        sys.exit(f"{TELEMETRY}: no metric names found")
    names = set(consts.values())
    for const in re.findall(r"describe_histogram!\(\s*(\w+)", src):
        base = consts[const]
        names |= {base + "_bucket", base + "_sum", base + "_count"}
    return names | {"up"}


def metric_names(expr):
    """The metric names in a PromQL expression (enough of PromQL for our queries)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)  # range selectors
    words = re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", e)
    return {w for w in words if w not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", w)}


def substitute(expr):
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    dash_path, rules_path, out_path = sys.argv[1:]
    allowed = exported_metrics()
    errors = []

    with open(dash_path) as f:
        dash = json.load(f)
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        errors.append("no Prometheus data-source variable named `datasource`")
    exprs = []
    for panel in dash.get("panels", []):
        if panel.get("type") == "row":
            continue
        title = panel.get("title", "?")
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            errors.append(f"panel {title!r} does not use the ${{datasource}} variable")
        targets = panel.get("targets", [])
        if not targets:
            errors.append(f"panel {title!r} has no query")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                errors.append(f"a query of panel {title!r} does not use ${{datasource}}")
            exprs.append((title, t.get("expr", "")))
    inst = variables.get("instance", {}).get("query", {})
    if isinstance(inst, dict):
        exprs.append(("variable instance", inst.get("query", "").replace("label_values(", "group by (instance) (").replace(", instance)", ")")))

    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    rule_exprs = [
        (rule.get("alert") or rule.get("record"), rule["expr"])
        for group in rules["groups"]
        for rule in group["rules"]
    ]

    used = set()
    for where, expr in exprs + rule_exprs:
        if not expr.strip():
            errors.append(f"{where}: empty expression")
            continue
        names = metric_names(substitute(expr))
        names = {n for n in names if ":" not in n}  # recording rules defined in the rules file
        used |= names
        for name in sorted(names - allowed):
            errors.append(f"{where}: {name} is not a metric the gateway exports")

    with open(out_path, "w") as out:
        out.write("groups:\n  - name: dashboard\n    rules:\n")
        for i, (_, expr) in enumerate(exprs):
            out.write(f"      - record: dashboard:query_{i}\n")
            out.write(f"        expr: {json.dumps(substitute(expr))}\n")

    if errors:
        for e in errors:
            print("error:", e)
        sys.exit(1)
    print(f"dashboard: {len(exprs)} queries and {len(rule_exprs)} rule expressions use "
          f"{len(used)} metrics, all exported by the gateway")


if __name__ == "__main__":
    main()
