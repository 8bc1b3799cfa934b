"""The checks of scripts/check-deploy that need more than one command: run with the Python of
.venv/deploy (PyYAML, jsonschema and kubernetes-validate from scripts/requirements-deploy.txt).

    python scripts/lib/check_deploy.py CHECK [ARGS...]

Each check prints what it found; its last line on stdout is a one-line summary. It exits 0 when
the check passes and 1, after printing every problem it found, when it fails.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import kubernetes_validate
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBERNETES = os.path.join(REPO, "deploy", "kubernetes")
GRAFANA = os.path.join(REPO, "deploy", "grafana")
DASHBOARD = os.path.join(GRAFANA, "thumbgen-dashboard.json")
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()

# The Kustomizations the README tells people to apply, relative to the repository. The bucket
# overlay builds on the cluster one, so it comes first: the namespace check edits each overlay of
# one copy in turn, and must render it before the overlay below it is edited.
OVERLAYS = ["deploy/kubernetes", "deploy/kubernetes/bucket", "deploy/kubernetes/cluster"]
# The optional components, relative to deploy/: each overlay can add them.
COMPONENTS = ["grafana", "kubernetes/components/servicemonitor"]
# The consumers of the job stream (src/cluster/names.rs); KEDA scales on both.
STREAM = "THUMBGEN_JOBS"
CONSUMERS = {"workers-products", "workers-backgrounds"}
# Kinds without a namespace (none of ours today, but a namespace check must not demand one).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


class Problems(list):
    def check(self, ok, message):
        if not ok:
            self.append(message)
        return ok


def finish(problems, summary):
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(summary)
    return 0


# ---- Kubernetes ---------------------------------------------------------------------------------

# Custom resources have no schema in kubernetes-validate. These are the parts of KEDA's and the
# Prometheus Operator's CRDs (keda.sh/v1alpha1 ScaledObject, monitoring.coreos.com/v1
# ServiceMonitor) that our manifests use, strict where a typo would silently do nothing.
STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": STRING_MAP,
        "annotations": STRING_MAP,
    },
}
def custom_resource(api_version, kind, spec):
    """The schema of a custom resource: its apiVersion and kind, metadata, and `spec`."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": METADATA,
            "spec": spec,
        },
    }


CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): custom_resource(
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "envSourceContainerName": {"type": "string"},
                        },
                    },
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "idleReplicaCount": {"type": "integer", "minimum": 0},
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "fallback": {"type": "object"},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"type": "string"},
                                "name": {"type": "string"},
                                "useCachedMetrics": {"type": "boolean"},
                                # KEDA reads every metadata value as a string: 50 must be "50".
                                "metadata": STRING_MAP,
                                "authenticationRef": {"type": "object", "required": ["name"]},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            },
                        },
                    },
                },
            },
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): custom_resource(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
                "type": "object",
                "required": ["selector", "endpoints"],
                "properties": {
                    "jobLabel": {"type": "string"},
                    "selector": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}},
                    },
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string", "pattern": "^/"},
                                "scheme": {"enum": ["http", "https"]},
                                "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                                "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                                "honorLabels": {"type": "boolean"},
                                "relabelings": {"type": "array"},
                                "metricRelabelings": {"type": "array"},
                            },
                        },
                    },
                },
            },
    ),
}


def kn(obj):
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate_objects(objects, problems, where):
    """Strict schema validation: kubernetes-validate for built-in kinds, CRD_SCHEMAS for ours."""
    kinds = []
    for obj in objects:
        if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
            problems.append(f"{where}: not a Kubernetes object: {str(obj)[:80]}")
            continue
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            errors = sorted(jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).iter_errors(obj), key=str)
            for error in errors:
                path = ".".join(str(p) for p in error.absolute_path) or "(top)"
                problems.append(f"{where}: {kn(obj)} (custom resource, checked against its CRD's fields): {path}: {error.message}")
            kinds.append(f"{obj['kind']}*")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            kinds.append(obj["kind"])
        except kubernetes_validate.utils.ValidationError as error:
            path = ".".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{where}: {kn(obj)}: {path}: {error.message}")
        except kubernetes_validate.utils.SchemaNotFoundError:
            problems.append(
                f"{where}: {kn(obj)}: no schema for {obj['apiVersion']} {obj['kind']} "
                "(a custom resource: add its fields to CRD_SCHEMAS in scripts/lib/check_deploy.py)"
            )
    return kinds


def kustomize(path):
    """`kubectl kustomize PATH` as a list of objects, or the error text."""
    out = subprocess.run(["kubectl", "kustomize", path], capture_output=True, text=True)
    if out.returncode != 0:
        return None, (out.stderr or out.stdout).strip()
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None], None


def check_scaled_objects(objects, problems, where):
    """KEDA's address of the NATS monitoring port must be the NATS Service of this render, in its
    namespace (KEDA resolves it from its own namespace), and both consumers must be triggers."""
    services = {(o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects if o["kind"] == "Service"}
    deployments = {(o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects if o["kind"] == "Deployment"}
    found = 0
    for so in (o for o in objects if o["kind"] == "ScaledObject"):
        found += 1
        ns = so["metadata"].get("namespace")
        spec = so["spec"]
        target = spec.get("scaleTargetRef", {}).get("name")
        problems.check((ns, target) in deployments, f"{where}: {kn(so)} scales {target!r}, no such Deployment in namespace {ns}")
        problems.check(
            spec.get("minReplicaCount", 0) <= spec.get("maxReplicaCount", 100),
            f"{where}: {kn(so)}: minReplicaCount above maxReplicaCount",
        )
        consumers = set()
        for trigger in spec.get("triggers", []):
            if trigger.get("type") != "nats-jetstream":
                continue
            meta = trigger.get("metadata", {})
            consumers.add(meta.get("consumer"))
            problems.check(meta.get("stream") == STREAM, f"{where}: {kn(so)}: stream {meta.get('stream')!r}, not {STREAM}")
            for key in ("natsServerMonitoringEndpoint", "stream", "consumer", "lagThreshold"):
                problems.check(key in meta, f"{where}: {kn(so)}: trigger {trigger.get('name')!r} lacks {key}")
            endpoint = meta.get("natsServerMonitoringEndpoint", "")
            match = re.fullmatch(r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:([0-9]+)", endpoint)
            if not problems.check(
                match is not None,
                f"{where}: {kn(so)}: endpoint {endpoint!r} is not SERVICE.NAMESPACE.svc.cluster.local:PORT",
            ):
                continue
            service, service_ns, port = match.group(1), match.group(2), int(match.group(3))
            problems.check(
                service_ns == ns,
                f"{where}: {kn(so)} in namespace {ns} reads NATS at {endpoint}: namespace {service_ns}, not {ns}",
            )
            svc = services.get((ns, service))
            if problems.check(svc is not None, f"{where}: {kn(so)}: no Service {service} in namespace {ns}"):
                ports = [p.get("port") for p in svc["spec"].get("ports", [])]
                problems.check(port in ports, f"{where}: {kn(so)}: Service {service} has no port {port} ({ports})")
        problems.check(
            consumers == CONSUMERS,
            f"{where}: {kn(so)} triggers on consumers {sorted(c for c in consumers if c)}, not {sorted(CONSUMERS)}",
        )
    return found


def check_no_volume(objects, problems, where):
    """The bucket overlay: no claim, no pod volume from a claim, the catalog in a bucket."""
    claims = [kn(o) for o in objects if o["kind"] == "PersistentVolumeClaim"]
    problems.check(not claims, f"{where}: claims {claims}, but the pods share nothing through a volume")
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            problems.check("persistentVolumeClaim" not in volume, f"{where}: {kn(deployment)} mounts claim volume {volume.get('name')!r}")
    urls = [o.get("data", {}).get("STORAGE_URL", "") for o in objects if o["kind"] == "ConfigMap"]
    problems.check(any(u.startswith("s3://") for u in urls), f"{where}: no ConfigMap sets STORAGE_URL=s3://…")


def check_service_monitors(objects, problems, where):
    for sm in (o for o in objects if o["kind"] == "ServiceMonitor"):
        ns = sm["metadata"].get("namespace")
        wanted = sm["spec"].get("selector", {}).get("matchLabels", {})
        matched = [
            o
            for o in objects
            if o["kind"] == "Service"
            and o["metadata"].get("namespace") == ns
            and wanted.items() <= (o["metadata"].get("labels") or {}).items()
        ]
        names = sorted(o["metadata"]["name"] for o in matched)
        problems.check(names == ["thumbgen"], f"{where}: {kn(sm)} selects Services {names}, not exactly thumbgen (the job name)")
        for endpoint in sm["spec"].get("endpoints", []):
            for svc in matched:
                ports = [p.get("name") for p in svc["spec"].get("ports", [])]
                problems.check(endpoint.get("port") in ports, f"{where}: {kn(sm)}: port {endpoint.get('port')!r} not on Service {kn(svc)}")


def cmd_kustomize(path):
    """Render one overlay, validate every object strictly, check the ScaledObject."""
    problems = Problems()
    objects, error = kustomize(os.path.join(REPO, path))
    if objects is None:
        problems.append(f"kubectl kustomize {path} failed: {error}")
        return finish(problems, "")
    kinds = validate_objects(objects, problems, path)
    scaled = check_scaled_objects(objects, problems, path)
    if path.endswith("bucket"):
        check_no_volume(objects, problems, path)
    namespaces = sorted({str(o["metadata"].get("namespace", "(none)")) for o in objects})
    note = f"; KEDA endpoints match namespace {namespaces[0]}" if scaled else ""
    crds = " (* custom resource: checked against the fields of its CRD)" if any(k.endswith("*") for k in kinds) else ""
    return finish(problems, f"{len(objects)} objects valid for Kubernetes {KUBERNETES_VERSION}: {', '.join(kinds)}{crds}{note}")


def cmd_kustomize_namespace(namespace):
    """In a copy of deploy/, do what the README says to a user's own copy: set a namespace and add
    both optional components to each overlay (kustomize edit set namespace / add component), then
    render. Every object must land in that namespace, KEDA must read NATS there, the dashboard
    ConfigMap must carry the sidecar label and the dashboard, and the ServiceMonitor must select
    thumbgen's Service."""
    problems = Problems()
    tmp = tempfile.mkdtemp(prefix="check-deploy-")
    try:
        shutil.copytree(os.path.join(REPO, "deploy"), os.path.join(tmp, "deploy"))
        counts = []
        for overlay in OVERLAYS:
            root = os.path.join(tmp, overlay)
            path = os.path.join(root, "kustomization.yaml")
            with open(path, encoding="utf-8") as f:
                kustomization = yaml.safe_load(f)
            kustomization["namespace"] = namespace
            deploy = os.path.join(tmp, "deploy")
            kustomization["components"] = list(kustomization.get("components", [])) + [
                os.path.relpath(os.path.join(deploy, c), root) for c in COMPONENTS
            ]
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(kustomization, f, sort_keys=False)
            where = f"{overlay} (namespace {namespace}, with components)"
            objects, error = kustomize(root)
            if objects is None:
                problems.append(f"{where}: kubectl kustomize failed: {error}")
                continue
            validate_objects(objects, problems, where)
            for obj in objects:
                if obj["kind"] not in CLUSTER_SCOPED:
                    problems.check(
                        obj["metadata"].get("namespace") == namespace,
                        f"{where}: {kn(obj)} is in namespace {obj['metadata'].get('namespace')}",
                    )
            scaled = check_scaled_objects(objects, problems, where)
            if overlay.endswith(("cluster", "bucket")):
                problems.check(scaled == 1, f"{where}: {scaled} ScaledObjects, expected 1")
            check_service_monitors(objects, problems, where)
            problems.check(
                any(o["kind"] == "ServiceMonitor" for o in objects), f"{where}: the ServiceMonitor component added nothing"
            )
            dashboards = [
                o
                for o in objects
                if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"
            ]
            if problems.check(len(dashboards) == 1, f"{where}: {len(dashboards)} ConfigMaps labelled grafana_dashboard=1"):
                data = dashboards[0].get("data", {})
                with open(DASHBOARD, encoding="utf-8") as f:
                    shipped = json.load(f)
                problems.check(
                    {k: json.loads(v) for k, v in data.items()} == {"thumbgen-dashboard.json": shipped},
                    f"{where}: {kn(dashboards[0])} does not hold deploy/grafana/thumbgen-dashboard.json",
                )
            counts.append(f"{overlay}: {len(objects)}")
    finally:
        shutil.rmtree(tmp)
    return finish(
        problems,
        f"namespace {namespace} and both components in every overlay ({', '.join(counts)} objects): "
        "KEDA endpoints, dashboard ConfigMap and ServiceMonitor follow",
    )


def kustomization_files(root):
    """Every file a kustomization under root lists (resources, patches, components' files)."""
    listed = set()
    for folder, _, files in os.walk(root):
        if "kustomization.yaml" not in files:
            continue
        with open(os.path.join(folder, "kustomization.yaml"), encoding="utf-8") as f:
            k = yaml.safe_load(f) or {}
        entries = list(k.get("resources", [])) + list(k.get("components", []))
        entries += [p["path"] for p in k.get("patches", []) if isinstance(p, dict) and "path" in p]
        entries += list(k.get("patchesStrategicMerge", []))
        listed.update(os.path.normpath(os.path.join(folder, e)) for e in entries)
        listed.add(os.path.join(folder, "kustomization.yaml"))
    return listed


def cmd_standalone():
    """Validate the manifests no kustomization applies (applied with kubectl apply -f)."""
    problems = Problems()
    listed = kustomization_files(os.path.join(REPO, "deploy"))
    checked = []
    for folder, _, files in sorted(os.walk(KUBERNETES)):
        for name in sorted(files):
            path = os.path.join(folder, name)
            if not name.endswith((".yaml", ".yml")) or path in listed:
                continue
            rel = os.path.relpath(path, REPO)
            with open(path, encoding="utf-8") as f:
                objects = [d for d in yaml.safe_load_all(f) if d is not None]
            validate_objects(objects, problems, rel)
            checked.append(rel)
    return finish(problems, f"{len(checked)} file(s) not applied by -k, valid: {', '.join(checked) or 'none'}")


# ---- Docker Compose -----------------------------------------------------------------------------


def is_daemon(service):
    """A service that runs thumbgen: the image built from this repository."""
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    image = service.get("image", "")
    return image.split(":")[0].endswith("thumbgen") or (context is not None and os.path.realpath(context) == REPO)


def cmd_compose(profile, config_json):
    """The services one profile selects (docker compose [--profile P] config --format json)."""
    problems = Problems()
    with open(config_json, encoding="utf-8") as f:
        services = (json.load(f) or {}).get("services") or {}
    daemons = {name: s for name, s in services.items() if is_daemon(s)}
    single = sorted(n for n, s in daemons.items() if not (s.get("environment") or {}).get("NATS_URL"))
    nodes = sorted(n for n, s in daemons.items() if (s.get("environment") or {}).get("NATS_URL"))
    if profile == "":
        problems.check(
            not services,
            f"services {sorted(services)} have no profile: they would also start with --profile cluster",
        )
        return finish(problems, "no service without a profile: `up` needs --profile single or --profile cluster")
    if profile == "single":
        problems.check(len(single) == 1, f"single-node daemons: {single}, expected exactly one")
        problems.check(not nodes, f"cluster nodes {nodes} start with --profile single")
        return finish(problems, f"services {sorted(services)}: one single-node daemon ({', '.join(single)})")
    if profile == "cluster":
        problems.check(not single, f"single-node daemon(s) {single} start with --profile cluster, beside the nodes on the same folders")
        problems.check(bool(nodes), "no cluster node (a thumbgen service with NATS_URL)")
        brokers = [n for n, s in services.items() if s.get("image", "").startswith("nats")]
        problems.check(bool(brokers), "no NATS service")
        for name in nodes:
            deps = services[name].get("depends_on") or {}
            problems.check(any(b in deps for b in brokers), f"{name} does not wait for NATS")
        return finish(problems, f"services {sorted(services)}: nodes {nodes} and NATS, no single-node daemon")
    if profile == "bucket":
        problems.check(not single, f"single-node daemon(s) {single} start with --profile bucket")
        brokers = [n for n, s in services.items() if s.get("image", "").startswith("nats")]
        stores = [n for n, s in services.items() if "seaweedfs" in s.get("image", "")]
        problems.check(bool(brokers) and bool(stores), f"NATS {brokers} and an S3 store {stores} needed")
        problems.check(bool(nodes), "no cluster node (a thumbgen service with NATS_URL)")
        for name in nodes:
            service = services[name]
            env = service.get("environment") or {}
            problems.check(str(env.get("STORAGE_URL", "")).startswith("s3://"), f"{name}: no STORAGE_URL=s3://…")
            deps = service.get("depends_on") or {}
            problems.check(all(d in deps for d in brokers + stores), f"{name} does not wait for NATS and the store")
            mounts = [v.get("target") for v in service.get("volumes") or [] if isinstance(v, dict)]
            problems.check(not mounts, f"{name} mounts {mounts}: on a bucket the nodes share no folder")
        return finish(problems, f"services {sorted(services)}: nodes {nodes} on a bucket ({', '.join(stores)}) and NATS, no shared folder")
    problems.append(f"unknown profile {profile}")
    return finish(problems, "")


# ---- Grafana ------------------------------------------------------------------------------------

# Metric names the dashboard queries: the daemon's own and Prometheus's `up`.
METRIC = re.compile(r"(?<![\w:$])(thumbgen_[a-z0-9_]+|process_[a-z0-9_]+|up)\b(\s*\{[^}]*\})?")
# What Grafana substitutes before a query runs, with a value PromQL accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "2m",
    "$__interval": "30s",
    "$__range": "6h",
    "${__rate_interval}": "2m",
    "${__interval}": "30s",
    "${__range}": "6h",
    "$job": "thumbgen",
    "${job}": "thumbgen",
    "${job:regex}": "thumbgen",
    # The tenant variable's "All": `.*` also matches the series of a deployment without tenants,
    # which have no `tenant` label.
    "$tenant": ".*",
    "${tenant}": ".*",
    "${tenant:regex}": ".*",
}
# The series of one catalog's work (and, in cluster mode, of its stream), which carry a `tenant`
# label with [[tenants]].
TENANT_SERIES = {
    "thumbgen_cluster_jobs_pending",
    "thumbgen_cluster_jobs_in_flight",
    "thumbgen_cluster_nodes",
    "thumbgen_cluster_broker_connected",
    "thumbgen_cluster_redeliveries_total",
    "thumbgen_thumbnails_written_total",
    "thumbgen_inputs_rejected_total",
    "thumbgen_queue_depth",
    "thumbgen_inputs_waiting",
    "thumbgen_removal_duration_seconds_bucket",
}


def dashboard_targets(dashboard):
    for panel in dashboard.get("panels", []):
        for inner in [panel] + panel.get("panels", []):
            for target in inner.get("targets", []):
                yield inner, target


def cmd_dashboard_form():
    """The dashboard works imported in the UI and provisioned from a file or the sidecar: no
    export-for-sharing inputs, its data source through a `datasource` variable, a `job` variable
    that every query selects, a `tenant` variable whose "All" keeps a deployment without tenants
    in view and that every query of a tenant's series selects, and a
    panel on `up`."""
    problems = Problems()
    with open(DASHBOARD, encoding="utf-8") as f:
        text = f.read()
    dashboard = json.loads(text)
    problems.check("__inputs" not in dashboard, "has __inputs: an export for sharing, which file/sidecar provisioning cannot fill in")
    for leftover in sorted(set(re.findall(r"\$\{DS_[A-Za-z0-9_]+\}", text))):
        problems.append(f"refers to {leftover}, an import-time input that provisioning never replaces")
    problems.check(dashboard.get("uid"), "no uid: provisioning would make a new dashboard at every change")
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds_vars = [n for n, v in variables.items() if v.get("type") == "datasource" and v.get("query") == "prometheus"]
    problems.check(ds_vars, "no template variable of type datasource (query prometheus)")
    job = variables.get("job")
    problems.check(job is not None and job.get("type") in ("query", "custom", "textbox"), "no `job` template variable")
    tenant = variables.get("tenant") or {}
    problems.check(
        tenant.get("type") == "query" and tenant.get("includeAll") and tenant.get("allValue") == ".*",
        "no `tenant` query variable with includeAll and allValue `.*` (which also matches series without the label)",
    )
    allowed_uids = {f"${{{n}}}" for n in ds_vars} | {f"${n}" for n in ds_vars}
    queries = 0
    up_panels = []
    seen_panels = set()
    for panel, target in dashboard_targets(dashboard):
        title = panel.get("title", panel.get("id"))
        owners = [(target, "query")]
        if id(panel) not in seen_panels:
            seen_panels.add(id(panel))
            owners.insert(0, (panel, "panel"))
        for owner, what in owners:
            uid = (owner.get("datasource") or {}).get("uid")
            problems.check(uid in allowed_uids, f"{title!r}: {what} data source uid {uid!r} is not the datasource variable")
        expr = target.get("expr", "")
        if not expr:
            continue
        queries += 1
        selectors = METRIC.findall(expr)
        problems.check(selectors, f"{title!r}: {expr!r} queries no thumbgen, process or up series")
        for name, matchers in selectors:
            if name == "up":
                up_panels.append(title)
            problems.check(
                re.search(r'\bjob\s*=~?\s*"\$\{?job(:[a-z]+)?\}?"', matchers or ""),
                f"{title!r}: {name}{matchers} does not select job=~\"$job\"",
            )
            if name in TENANT_SERIES:
                problems.check(
                    re.search(r'\btenant\s*=~\s*"\$\{?tenant(:[a-z]+)?\}?"', matchers or ""),
                    f"{title!r}: {name}{matchers} does not select tenant=~\"$tenant\"",
                )
    problems.check(up_panels, "no panel shows up{job=~\"$job\"}: a dead daemon would look idle")
    return finish(
        problems,
        f"{queries} queries, each on the `{ds_vars[0] if ds_vars else '?'}` data source variable and job=~\"$job\" "
        f"(a tenant's series also on tenant=~\"$tenant\"); "
        f"up panel: {', '.join(map(repr, sorted(set(up_panels))))}",
    )


def cmd_dashboard_rules(out_path):
    """Write every dashboard query, with Grafana's variables replaced, as a recording rule, so
    that `promtool check rules` parses each one."""
    with open(DASHBOARD, encoding="utf-8") as f:
        dashboard = json.load(f)
    rules = []
    leftovers = []
    for panel, target in dashboard_targets(dashboard):
        expr = target.get("expr", "")
        if not expr:
            continue
        for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
            expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
        if "$" in expr:
            leftovers.append(f"panel {panel.get('id')} {target.get('refId')}: {expr}")
        rules.append({"record": f"dashboard:panel_{panel.get('id')}:{target.get('refId', 'A')}", "expr": expr})
    with open(out_path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "thumbgen-dashboard-queries", "rules": rules}]}, f, sort_keys=False)
    for leftover in leftovers:
        print(f"  - a Grafana variable check_deploy.py does not know: {leftover}")
    print(f"{len(rules)} queries written to {out_path}")
    return 1 if leftovers else 0


def cmd_provisioning():
    """The provisioning files parse and point Grafana at the dashboard and at Prometheus."""
    problems = Problems()
    base = os.path.join(GRAFANA, "provisioning")
    for folder in ("dashboards", "datasources"):
        if not os.path.isdir(os.path.join(base, folder)):
            problems.append(f"no folder deploy/grafana/provisioning/{folder}/")
    if problems:
        return finish(problems, "")
    def documents(folder):
        """(file name, parsed YAML) of each provisioning file in `folder`, apiVersion checked."""
        for name in sorted(os.listdir(os.path.join(base, folder))):
            with open(os.path.join(base, folder, name), encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            problems.check(doc.get("apiVersion") == 1, f"{folder}/{name}: apiVersion is not 1")
            yield name, doc

    providers = []
    for name, doc in documents("dashboards"):
        for provider in doc.get("providers", []):
            providers.append(provider.get("name"))
            problems.check(provider.get("type") == "file", f"dashboards/{name}: provider {provider.get('name')} is not of type file")
            path = (provider.get("options") or {}).get("path", "")
            problems.check(path.startswith("/"), f"dashboards/{name}: provider {provider.get('name')}: options.path {path!r} is not absolute")
    problems.check(providers, "no dashboard provider in provisioning/dashboards/")
    sources = []
    for name, doc in documents("datasources"):
        for source in doc.get("datasources", []):
            sources.append(source.get("name"))
            problems.check(source.get("type") == "prometheus", f"datasources/{name}: {source.get('name')} is not a prometheus data source")
            problems.check(str(source.get("url", "")).startswith(("http://", "https://")), f"datasources/{name}: {source.get('name')}: no http(s) url")
    problems.check(sources, "no data source in provisioning/datasources/")
    return finish(problems, f"dashboard providers {providers}, data sources {sources}")


def main(argv):
    commands = {
        "kustomize": lambda args: cmd_kustomize(args[0]),
        "kustomize-namespace": lambda args: cmd_kustomize_namespace(args[0]),
        "standalone": lambda args: cmd_standalone(),
        "compose": lambda args: cmd_compose(args[0], args[1]),
        "dashboard-form": lambda args: cmd_dashboard_form(),
        "dashboard-rules": lambda args: cmd_dashboard_rules(args[0]),
        "provisioning": lambda args: cmd_provisioning(),
    }
    if len(argv) < 1 or argv[0] not in commands:
        print(__doc__.strip())
        print("checks: " + ", ".join(commands))
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
