#!/usr/bin/env bash
# Checks the deploy/ files of codegen-sentinel against each other and against the binary:
# - every YAML file parses (Kubernetes manifests, configs, and the config and rules embedded in
#   the ConfigMaps), and the manifests have the shape the docs promise (one replica, a volume
#   claim, probes, a restricted security context, Services onto the named port);
# - the systemd unit, the Containerfile and the manifests agree on the binary's path and
#   subcommands, the config path, the store path, the rules directory, the port and the user;
# - every secret a config names is provided: LoadCredential= lines in the unit, keys of the
#   Kubernetes Secret, `--secret` flags in the container README;
# - the Containerfile's build stage copies every directory Cargo reads;
# - optionally: `kubectl kustomize` builds the manifests and kubernetes-validate accepts them;
# - with a built binary (SENTINEL_BIN, else target/release or target/debug), the subcommands
#   and flags exist and every config (and rule file, once `check` exists) validates.
#
# Usage: scripts/check-deploy.sh   (exit 0 when everything holds, 1 otherwise)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if ! python3 -c 'import yaml' 2>/dev/null; then
    echo "PyYAML not found: installing it with pip" >&2
    python3 -m pip install --quiet pyyaml || python3 -m pip install --quiet --break-system-packages pyyaml
fi

bin=${SENTINEL_BIN:-}
if [ -z "$bin" ]; then
    for candidate in "$root/target/release/codegen-sentinel" "$root/target/debug/codegen-sentinel"; do
        if [ -x "$candidate" ]; then bin=$candidate; break; fi
    done
fi

exec python3 - "$root" "$bin" <<'PY'
import json, os, re, shlex, shutil, subprocess, sys, tempfile
import yaml

root, binary = sys.argv[1], sys.argv[2]
D = lambda *p: os.path.join(root, "deploy", *p)
failures = []
notes = []

def check(ok, message):
    (notes if ok else failures).append(("ok   " if ok else "FAIL ") + message)
    return ok

def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()

# ---- the files --------------------------------------------------------------------------
CONFIG = "/etc/codegen-sentinel/sentinel.yaml"
RULES = "/etc/codegen-sentinel/rules"
STORE = "/var/lib/codegen-sentinel"
BINARY = "/usr/local/bin/codegen-sentinel"
PORT = 8787

def load_yaml(path, text=None, multi=False):
    try:
        text = read(path) if text is None else text
        docs = [d for d in yaml.safe_load_all(text) if d is not None] if multi else yaml.safe_load(text)
        check(True, f"YAML parses: {os.path.relpath(path, root)}")
        return docs
    except (OSError, yaml.YAMLError) as err:
        check(False, f"YAML: {os.path.relpath(path, root)}: {err}")
        return [] if multi else {}

k8s_dir = D("kubernetes")
manifests = {}
for name in sorted(os.listdir(k8s_dir)):
    if name.endswith((".yaml", ".yml")):
        manifests[name] = load_yaml(os.path.join(k8s_dir, name), multi=True)
objects = {(d.get("kind"), d.get("metadata", {}).get("name")): d
           for name, docs in manifests.items() if name != "kustomization.yaml" for d in docs}
kustomization = (manifests.get("kustomization.yaml") or [{}])[0]
systemd_cfg = load_yaml(D("systemd", "sentinel.yaml"))
container_cfg = load_yaml(D("container", "sentinel.yaml"))
load_yaml(D("sentinel.example.yaml"))

# ---- Kubernetes shape ---------------------------------------------------------------------
listed = set(kustomization.get("resources", []))
on_disk = set(manifests) - {"kustomization.yaml"}
check(listed == on_disk, f"kustomization.yaml lists every manifest ({sorted(on_disk)})")
ns = kustomization.get("namespace")
check(all(d.get("kind") == "Namespace" or d.get("metadata", {}).get("namespace") == ns
          for d in objects.values()), f"every namespaced object is in namespace {ns}")

sts = objects.get(("StatefulSet", "codegen-sentinel"), {})
spec = sts.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
containers = pod.get("containers", [{}])
ctr = containers[0] if containers else {}
check(spec.get("replicas") == 1, "StatefulSet runs exactly one replica")
claims = {c["metadata"]["name"]: c for c in spec.get("volumeClaimTemplates", [])}
mounts = {m["mountPath"]: m for m in ctr.get("volumeMounts", [])}
check(mounts.get(STORE, {}).get("name") in claims, f"{STORE} is a volumeClaimTemplate volume")
check(objects.get(("Service", spec.get("serviceName")), {}).get("spec", {}).get("clusterIP") == "None",
      "serviceName names a headless Service")
ports = {p.get("name"): p.get("containerPort") for p in ctr.get("ports", [])}
check(ports.get("http") == PORT, f"container port http is {PORT}")
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
    get = ctr.get(probe, {}).get("httpGet", {})
    check(get.get("path") == path and get.get("port") in ("http", PORT), f"{probe} is GET {path} on port http")
psc, csc = pod.get("securityContext", {}), ctr.get("securityContext", {})
check(psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True, "runAsNonRoot")
check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation: false")
check(csc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities drop ALL")
check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
      and csc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile RuntimeDefault")
res = ctr.get("resources", {})
check("requests" in res and "memory" in res.get("limits", {}), "resources: requests and a memory limit")
for (kind, name), svc in objects.items():
    if kind == "Service":
        sel = svc["spec"].get("selector", {})
        labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
        check(sel and all(labels.get(k) == v for k, v in sel.items()), f"Service {name} selects the pod")
        for p in svc["spec"].get("ports", []):
            check(p.get("targetPort") in ("http", PORT), f"Service {name} port {p.get('name')} targets http")
check(all(svc["spec"].get("publishNotReadyAddresses") is True
          for (kind, _), svc in objects.items() if kind == "Service"),
      "Services publish the pod while not ready (readiness gates rollouts, not deliveries)")
svc_ports = {p["name"] for p in objects.get(("Service", "codegen-sentinel"), {}).get("spec", {}).get("ports", [])}
check({"webhooks", "metrics"} <= svc_ports, "Service codegen-sentinel has webhooks and metrics ports")
ann = spec.get("template", {}).get("metadata", {}).get("annotations", {})
check(ann.get("prometheus.io/port") == str(PORT) and ann.get("prometheus.io/path") == "/metrics",
      "metrics annotations point at /metrics on the port")

# Optional tools, when present: kustomize (in kubectl) builds offline, kubernetes-validate
# checks every object against the Kubernetes schemas.
if shutil.which("kubectl"):
    r = subprocess.run(["kubectl", "kustomize", k8s_dir], capture_output=True, text=True)
    check(r.returncode == 0, "kubectl kustomize builds deploy/kubernetes" + ("" if r.returncode == 0 else ": " + r.stderr.strip()))
else:
    notes.append("skip kubectl kustomize: kubectl not installed")
if shutil.which("kubernetes-validate"):
    files = [os.path.join(k8s_dir, n) for n in sorted(manifests) if n != "kustomization.yaml"]
    r = subprocess.run(["kubernetes-validate", "--strict", "--quiet", *files], capture_output=True, text=True)
    check(r.returncode == 0, "kubernetes-validate --strict accepts every object"
          + ("" if r.returncode == 0 else ":\n" + (r.stdout + r.stderr).strip()))
else:
    notes.append("skip schema validation: kubernetes-validate not installed (pip install kubernetes-validate)")

cm = objects.get(("ConfigMap", "codegen-sentinel-config"), {}).get("data", {})
k8s_cfg = load_yaml(os.path.join(k8s_dir, "configmap.yaml#sentinel.yaml"), cm.get("sentinel.yaml", ""))
rules_cm = objects.get(("ConfigMap", "codegen-sentinel-rules"), {}).get("data", {})
check(bool(rules_cm), "a rules ConfigMap with at least one rule file")
for key, text in rules_cm.items():
    check(key.endswith((".yaml", ".yml")), f"rule file key {key} ends in .yaml/.yml (else it is not loaded)")
    check("rules" in (load_yaml(os.path.join(k8s_dir, f"configmap.yaml#{key}"), text) or {}),
          f"rule file {key} has a top-level rules: list")
secret_keys = set(objects.get(("Secret", "codegen-sentinel"), {}).get("stringData", {}))
secret_keys |= set(objects.get(("Secret", "codegen-sentinel"), {}).get("data", {}) or {})
vols = {v["name"]: v for v in pod.get("volumes", [])}
def mounted(path, kind, name):
    m = mounts.get(path)
    v = vols.get(m["name"], {}) if m else {}
    src = v.get(kind, {})
    return bool(m) and (src.get("name") == name or src.get("secretName") == name)
check(mounted(CONFIG, "configMap", "codegen-sentinel-config") and mounts[CONFIG].get("subPath") == "sentinel.yaml",
      f"{CONFIG} comes from the config ConfigMap")
check(mounted(RULES, "configMap", "codegen-sentinel-rules"), f"{RULES} comes from the rules ConfigMap")
check(mounted("/run/secrets", "secret", "codegen-sentinel"), "/run/secrets comes from the Secret")
env = {e["name"]: e.get("value") for e in ctr.get("env", [])}
check(env.get("SENTINEL_CONFIG") == CONFIG, "SENTINEL_CONFIG is the config path in the pod")

# ---- Containerfile ------------------------------------------------------------------------
def instructions(text):
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
            buf = ""
    return out

cf = instructions(read(D("container", "Containerfile")))
stages = [i for i, (w, _) in enumerate(cf) if w == "FROM"]
check(len(stages) >= 2, "Containerfile is multi-stage")
final = cf[stages[-1]:] if stages else []
first = cf[:stages[-1]] if stages else []
def last(word, part=final):
    found = [rest for w, rest in part if w == word]
    return found[-1] if found else ""
def exec_form(rest):
    try:
        return json.loads(rest)
    except ValueError:
        return shlex.split(rest)
entry, cmd = exec_form(last("ENTRYPOINT")), exec_form(last("CMD"))
health = last("HEALTHCHECK")
check(any(re.search(r"\bcargo build --release --locked\b", r) for w, r in first if w == "RUN"),
      "build stage runs cargo build --release --locked")
user = last("USER").split(":")[0]
check(user == "65532", "runtime user is 65532 (non-root)")
check(psc.get("runAsUser") == int(user or -1) and psc.get("fsGroup") == int(user or -1),
      "the pod runs as the image's user, and the volume belongs to its group")
check(str(PORT) in last("EXPOSE").split(), f"EXPOSE {PORT}")
check(last("STOPSIGNAL") == "SIGTERM", "STOPSIGNAL SIGTERM")
check(STORE in exec_form(last("VOLUME")), f"VOLUME {STORE}")
check(entry == ["codegen-sentinel"], "ENTRYPOINT is the binary on PATH")
copies = " ".join(r for w, r in final if w == "COPY")
check(BINARY in copies, f"binary installed at {BINARY}")
check(f"--chown=65532:65532" in copies and STORE in copies, f"{STORE} is owned by 65532 in the image")
health_cmd = exec_form(health.split("CMD", 1)[1]) if "CMD" in health else []
check(health_cmd == ["codegen-sentinel", "healthcheck"], "HEALTHCHECK runs codegen-sentinel healthcheck")
check(f"SENTINEL_CONFIG={CONFIG}" in last("ENV").replace(" ", ""), "ENV SENTINEL_CONFIG names the config")
config_copy = [r for w, r in first if w == "COPY" and "deploy/container/sentinel.yaml" in r]
check(bool(config_copy) and config_copy[0].split()[-1].endswith(CONFIG), f"the container config lands at {CONFIG}")
check(any(RULES in r for w, r in first if w == "RUN"), f"the image has an (empty) {RULES}")
# Sources Cargo reads must be copied into the build stage.
copied = set()
for w, r in first:
    if w == "COPY" and "--from" not in r:
        copied |= {p.rstrip("/").split("/")[0] for p in r.split()[:-1] if not p.startswith("--")}
cargo = read(os.path.join(root, "Cargo.toml"))
needed = {"Cargo.toml", "Cargo.lock", "src"}
needed |= {p.split("/")[0] for p in re.findall(r'^\s*(?:path|build)\s*=\s*"([^"]+)"', cargo, re.M)}
if re.search(r"^\[\[bench\]\]", cargo, re.M):
    needed.add("benches")
if re.search(r"^\[\[test\]\]", cargo, re.M):
    needed.add("tests")
if re.search(r"^\[\[example\]\]", cargo, re.M):
    needed.add("examples")
if os.path.exists(os.path.join(root, "build.rs")) and "build = false" not in cargo:
    needed.add("build.rs")
for dirpath, _, files in os.walk(os.path.join(root, "src")):
    for f in files:
        if f.endswith(".rs"):
            here = os.path.join(dirpath, f)
            for rel in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"', read(here)):
                target = os.path.relpath(os.path.normpath(os.path.join(dirpath, rel)), root)
                if not target.startswith(".."):
                    needed.add(target.split(os.sep)[0])
missing = sorted(needed - copied)
check(not missing, f"the build stage copies everything Cargo reads ({', '.join(sorted(needed))})"
      + (f"; missing: {missing}" if missing else ""))

# ---- systemd unit -------------------------------------------------------------------------
unit = {}
for line in read(D("systemd", "codegen-sentinel.service")).splitlines():
    if "=" in line and not line.startswith(("#", ";", "[")):
        key, _, value = line.partition("=")
        unit.setdefault(key.strip(), []).append(value.strip())
exec_start = shlex.split(unit.get("ExecStart", [""])[0])
check(exec_start[:1] == [BINARY], f"ExecStart runs {BINARY}")
check(unit.get("Type") == ["notify"] and unit.get("NotifyAccess") == ["main"] and "WatchdogSec" in unit,
      "Type=notify, NotifyAccess=main and WatchdogSec")
check(unit.get("DynamicUser") == ["yes"], "DynamicUser=yes")
check(f"/var/lib/{unit.get('StateDirectory', [''])[0]}" == STORE, f"StateDirectory is {STORE}")
check(f"/etc/{unit.get('ConfigurationDirectory', [''])[0]}" == os.path.dirname(CONFIG),
      f"ConfigurationDirectory is {os.path.dirname(CONFIG)}")
credentials = {v.split(":", 1)[0]: v.split(":", 1)[1] if ":" in v else "" for v in unit.get("LoadCredential", [])}
stop = unit.get("TimeoutStopSec", ["0"])[0]

# ---- the commands every deployment runs ------------------------------------------------------
def run_args(argv, where):
    check(argv[:1] == ["run"], f"{where} runs the `run` subcommand")
    check("--config" in argv and argv[argv.index("--config") + 1] == CONFIG, f"{where} passes --config {CONFIG}")
    if "--log-format" in argv:
        check(argv[argv.index("--log-format") + 1] in ("text", "json"), f"{where} --log-format is text or json")
    return argv
run_args(exec_start[1:], "systemd ExecStart")
run_args(cmd, "Containerfile CMD")
run_args(ctr.get("args", []), "StatefulSet args")
check(ctr.get("image", "").split(":")[0].split("/")[-1] == "codegen-sentinel", "StatefulSet runs the codegen-sentinel image")

# ---- the three configs --------------------------------------------------------------------
def duration_s(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600}
    m = re.fullmatch(r"(\d+)\s*(ms|s|min|m|h)?", str(text).strip())
    return int(m.group(1)) * units[m.group(2) or "s"] if m else None

def secret_refs(cfg):
    """(key path, kind, value) for every secret reference in a config."""
    refs = []
    def visit(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                p = f"{path}.{k}" if path else k
                if isinstance(v, (dict, list)):
                    visit(v, p)
                elif k.endswith("_file"):
                    refs.append((p, "file", v))
                elif k.endswith("_env"):
                    refs.append((p, "env", v))
                elif k in ("token", "private_key", "webhook_secrets", "secret"):
                    refs.append((p, "credential", v))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, f"{path}[{i}]")
    visit(cfg, "")
    return refs

for label, cfg, listen in (("systemd", systemd_cfg, f"127.0.0.1:{PORT}"),
                           ("container", container_cfg, f"0.0.0.0:{PORT}"),
                           ("kubernetes", k8s_cfg, f"0.0.0.0:{PORT}")):
    check(cfg.get("store", {}).get("path") == STORE, f"{label} config: store.path is {STORE}")
    check(cfg.get("rules", {}).get("paths") == [RULES], f"{label} config: rules.paths is [{RULES}]")
    check(cfg.get("server", {}).get("listen") == listen, f"{label} config: server.listen is {listen}")
    grace = duration_s(cfg.get("executor", {}).get("shutdown_grace", "10s"))
    bound = duration_s(stop) if label == "systemd" else (
        pod.get("terminationGracePeriodSeconds") if label == "kubernetes" else 30)
    check(grace is not None and bound is not None and grace + 5 <= bound,
          f"{label}: the stop timeout ({bound}s) leaves room after executor.shutdown_grace ({grace}s)")

used = set()
for path, kind, value in secret_refs(systemd_cfg):
    if kind == "credential":
        used.add(value)
        check(value in credentials, f"systemd config {path}: credential {value} has a LoadCredential= line")
    elif kind == "file":
        m = re.fullmatch(r"/run/credentials/codegen-sentinel\.service/([^/]+)", value)
        check(bool(m) and m.group(1) in credentials,
              f"systemd config {path}: {value} is a credential of the unit")
        if m:
            used.add(m.group(1))
    else:
        check(False, f"systemd config {path}: secrets come from credentials, not the environment")
check(set(credentials) <= used, f"every LoadCredential= is used by the config ({sorted(set(credentials) - used) or 'none unused'})")
check(all(p.startswith("/etc/codegen-sentinel/credentials/") for p in credentials.values()),
      "credentials load from /etc/codegen-sentinel/credentials/")

readme = read(D("container", "README.md"))
for label, cfg, provided in (("kubernetes", k8s_cfg, secret_keys), ("container", container_cfg,
                             set(re.findall(r"--secret ([\w.-]+)", readme)))):
    for path, kind, value in secret_refs(cfg):
        name = value.rsplit("/", 1)[-1]
        check(kind == "file" and value == f"/run/secrets/{name}" and name in provided,
              f"{label} config {path}: /run/secrets/{name} is provided")

# ---- the binary ---------------------------------------------------------------------------
subcommands = {"run", "healthcheck"}
if binary:
    def call(*argv):
        return subprocess.run([binary, *argv], capture_output=True, text=True, timeout=60)
    for sub in sorted(subcommands):
        check(call(sub, "--help").returncode == 0, f"binary has the `{sub}` subcommand")
    run_help = call("run", "--help").stdout
    check("--config" in run_help and "--log-format" in run_help, "`run` takes --config and --log-format")
    has_check = call("check", "--help").returncode == 0
    with tempfile.TemporaryDirectory() as tmp:
        for label, cfg in (("systemd", systemd_cfg), ("container", container_cfg), ("kubernetes", k8s_cfg)):
            if has_check:
                # The rule directory is the deployment's: Kubernetes ships its rules in a
                # ConfigMap, checked in its place; the others start with an empty directory.
                rules_dir = os.path.join(tmp, f"{label}-rules")
                os.makedirs(rules_dir, exist_ok=True)
                for key, text in (rules_cm.items() if label == "kubernetes" else []):
                    with open(os.path.join(rules_dir, key), "w") as f:
                        f.write(text)
                local = dict(cfg, rules={"paths": [rules_dir]})
                path = os.path.join(tmp, f"{label}.yaml")
                with open(path, "w") as f:
                    yaml.safe_dump(local, f)
                r = call("check", "--config", path)
            else:
                # Without `check`, loading the config is the validation: `state runs` parses and
                # validates it, then reads an empty scratch store (secrets are not read).
                scratch = dict(cfg, store=dict(cfg.get("store", {}), path=os.path.join(tmp, label)))
                path = os.path.join(tmp, f"{label}.yaml")
                with open(path, "w") as f:
                    yaml.safe_dump(scratch, f)
                r = call("state", "runs", "--config", path)
            check(r.returncode == 0, f"{label} config validates with the binary"
                  + ("" if r.returncode == 0 else ":\n" + (r.stdout + r.stderr).strip()))
        if has_check:
            for key, text in rules_cm.items():
                path = os.path.join(tmp, key)
                with open(path, "w") as f:
                    f.write(text)
                r = call("check", path)
                check(r.returncode == 0, f"rule file {key} validates" + ("" if r.returncode == 0 else ":\n" + r.stderr.strip()))
        else:
            notes.append("skip rule files: the binary has no `check` subcommand yet")
else:
    # No binary: the subcommands as the clap enum in src/cli/mod.rs declares them.
    src = read(os.path.join(root, "src", "cli", "mod.rs"))
    body = re.search(r"pub enum Command \{(.*?)\n\}", src, re.S)
    variants = re.findall(r"^\s{4}(\w+)\s*[({,]", body.group(1), re.M) if body else []
    names = {re.sub(r"(?<!^)(?=[A-Z])", "-", v).lower() for v in variants}
    for sub in sorted(subcommands):
        check(sub in names, f"src/cli/mod.rs declares the `{sub}` subcommand (no binary built)")

for line in notes + failures:
    print(line)
skipped = sum(n.startswith("skip") for n in notes)
print(f"{len(notes) - skipped} passed, {len(failures)} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failures else 0)
PY
