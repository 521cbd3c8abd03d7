#!/usr/bin/env python3
"""Checks a Kubernetes Indexed Job manifest that runs a sharded `servesim sweep` (a ctest entry).

usage: check-k8s-job.py MANIFEST.yaml

Parses it with PyYAML and checks: kind Job (batch/v1), completionMode Indexed, completions and parallelism
positive integers (parallelism <= completions), a container whose command runs `servesim sweep`, and the
SERVESIM_SHARD_COUNT variable equal to completions (Kubernetes exposes the index only). Exits 0 when all hold,
1 with one line per failure, 77 (skipped) without PyYAML.
"""
import sys

try:
    import yaml
except ImportError:
    print("SKIP: python3-yaml is missing")
    sys.exit(77)


def main(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    errors = []
    if not isinstance(doc, dict):
        print(f"{path}: not a YAML mapping")
        return 1
    if doc.get("apiVersion") != "batch/v1" or doc.get("kind") != "Job":
        errors.append(f"apiVersion/kind is {doc.get('apiVersion')}/{doc.get('kind')}, not batch/v1/Job")
    spec = doc.get("spec") or {}
    if spec.get("completionMode") != "Indexed":
        errors.append(f"spec.completionMode is {spec.get('completionMode')!r}, not 'Indexed'")
    completions, parallelism = spec.get("completions"), spec.get("parallelism")
    for name, value in (("completions", completions), ("parallelism", parallelism)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            errors.append(f"spec.{name} is {value!r}, not a positive integer")
    if isinstance(completions, int) and isinstance(parallelism, int) and parallelism > completions:
        errors.append(f"spec.parallelism {parallelism} exceeds spec.completions {completions}")
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    sweeps = [c for c in containers
              if "servesim sweep" in " ".join(str(x) for x in (c.get("command") or []) + (c.get("args") or []))]
    if not sweeps:
        errors.append("no container runs `servesim sweep`")
    for c in sweeps:
        env = {e.get("name"): e.get("value") for e in c.get("env") or []}
        if env.get("SERVESIM_SHARD_COUNT") != str(completions):
            errors.append(f"container {c.get('name')}: SERVESIM_SHARD_COUNT is {env.get('SERVESIM_SHARD_COUNT')!r}, "
                          f"not spec.completions ({completions})")
    for e in errors:
        print(f"{path}: {e}")
    if not errors:
        print(f"{path}: Indexed Job of {completions} completions, {parallelism} in parallel, runs servesim sweep")
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
