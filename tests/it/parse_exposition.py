"""Parse an exposition from stdin with prometheus_client's parsers; print each sample as
a JSON line [name, labels, value, exemplar] (the exemplar is null or
{"labels", "value", "timestamp"}). Exits non-zero (with the parser's message) on any
error. Usage: parse_exposition.py prometheus|openmetrics"""
import json
import math
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

text = sys.stdin.read()
parse = parse_openmetrics if sys.argv[1] == "openmetrics" else parse_prometheus
for family in parse(text):
    for sample in family.samples:
        value = sample.value
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            value = str(value)
        exemplar = None
        if getattr(sample, "exemplar", None) is not None:
            e = sample.exemplar
            exemplar = {"labels": e.labels, "value": e.value, "timestamp": float(e.timestamp) if e.timestamp is not None else None}
        print(json.dumps([sample.name, sample.labels, value, exemplar], sort_keys=True, ensure_ascii=False))
