#!/usr/bin/env python3
"""Validate the custom resources of deploy/k8s strictly against their operators' schemas.

kubernetes-validate knows only the built-in kinds; for the ScaledObject (KEDA), the
ServiceMonitor and the PrometheusRule (Prometheus Operator) it can only warn. This script checks
them against the JSON schema of the models PyPI's `cloudcoil-models-keda` (2.16.1.0, generated
from KEDA 2.16.1's CRDs) and `cloudcoil-models-prometheus-operator` (0.80.1.0, from the
operator's v0.80.1 CRDs) define, made strict: an unknown field anywhere is an error, as with
`kubectl apply --validate=strict`. The packages are installed by the Makefile's venv.

Usage: validate_crs.py FILE... (or `-` for stdin, e.g. the output of `kubectl kustomize`).
Exit status 1 with one line per problem; 0 when every custom resource is valid and each of the
three kinds was seen at least once (so that a renamed file cannot skip the check).
"""
import sys

import jsonschema
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring

MODELS = {
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): monitoring.ServiceMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): monitoring.PrometheusRule,
}


def strict(schema):
    """Forbid properties a schema does not declare, at every level."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for value in schema.values():
            strict(value)
    elif isinstance(schema, list):
        for value in schema:
            strict(value)
    return schema


def documents(path):
    stream = sys.stdin if path == "-" else open(path)
    with stream:
        return [d for d in yaml.safe_load_all(stream) if d]


def main(paths):
    problems, seen = [], set()
    for path in paths:
        for doc in documents(path):
            key = (doc.get("apiVersion"), doc.get("kind"))
            model = MODELS.get(key)
            if model is None:
                continue
            seen.add(key)
            name = f"{path}: {key[1]}/{doc.get('metadata', {}).get('name')}"
            schema = strict(model.model_json_schema(by_alias=True))
            validator = jsonschema.Draft202012Validator(schema)
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
            for error in errors:
                where = ".".join(str(p) for p in error.path) or "(top)"
                problems.append(f"ERROR {name}: {where}: {error.message}")
            if not errors:
                print(f"INFO {name} passed against {model.__module__}")
    for key in sorted(set(MODELS) - seen):
        problems.append(f"ERROR no {key[1]} ({key[0]}) found in {' '.join(paths)}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["-"]))
