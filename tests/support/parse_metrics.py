"""Parses Prometheus text exposition from stdin with the reference Python parser and prints each
family as JSON: {name: {"type": ..., "samples": [[sample_name, labels, value], ...]}}.
A parse error exits non-zero, which fails the calling test."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

families = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    families[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
json.dump(families, sys.stdout)
