// k8s-validate: checks every manifest of deploy/kubernetes/ against the Kubernetes API schemas,
// offline, then checks that the manifests agree with each other and with the daemon's config.
//
//   node scripts/k8s-validate.mjs TOOLS_DIR MANIFEST_DIR [--config-out FILE]
//
// TOOLS_DIR holds node_modules with yaml, kubernetes-models, kubernetes-types and typescript
// (scripts/check-deploy.sh installs them there). Two schema checks run on each document:
//   1. kubernetes-models: the OpenAPI schemas of the API server compiled to validators
//      (types, required fields, enums, int32/int64 ranges). They allow unknown fields;
//   2. TypeScript on kubernetes-types: each document becomes a typed object literal, so a
//      misspelled or misplaced field is an error (excess property), as are wrong types and
//      missing required fields. Quantities must be strings here ("2", not 2).
// Negative checks prove both catch what they should: mutated copies of the Deployment (a
// misspelled field, a string where an integer goes, a container without a name, a CPU
// limit that no longer matches the config) must each be rejected, or the run fails.
// --config-out writes the ConfigMap's inferd.yaml to FILE for the daemon to try.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const [tools, manifestDir, ...rest] = process.argv.slice(2);
if (!tools || !manifestDir) {
    console.error("usage: k8s-validate.mjs TOOLS_DIR MANIFEST_DIR [--config-out FILE]");
    process.exit(2);
}
const configOut = rest[0] === "--config-out" ? rest[1] : null;
const require = createRequire(path.join(path.resolve(tools), "package.json"));
const YAML = require("yaml");
const ts = require("typescript");

let failures = 0;
const fail = (msg) => {
    console.error(`k8s: FAIL: ${msg}`);
    failures++;
};

// ---- loading: every document of every *.yaml, parsed as kubectl does (YAML 1.1) ----

function loadManifests(dir) {
    const docs = [];
    for (const file of fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()) {
        const where = path.join(dir, file);
        const parsed = YAML.parseAllDocuments(fs.readFileSync(where, "utf8"), {
            version: "1.1",
            uniqueKeys: true,
            prettyErrors: true,
        });
        parsed.forEach((d, i) => {
            for (const e of [...d.errors, ...d.warnings]) fail(`${where}: ${e.message}`);
            const obj = d.toJS();
            if (obj == null) return;
            docs.push({ where: `${where}#${i}`, obj });
        });
    }
    return docs;
}

// "apps/v1" -> group "apps", version "v1"; "v1" -> core
function groupVersion(apiVersion) {
    const slash = apiVersion.indexOf("/");
    return slash < 0
        ? { group: "", version: apiVersion }
        : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}
const label = (d) => `${d.where} (${d.obj.kind} ${d.obj.metadata?.name ?? "?"})`;

// ---- check 1: kubernetes-models (OpenAPI schemas) ----

async function openapiCheck(doc) {
    const { apiVersion, kind } = doc.obj;
    if (typeof apiVersion !== "string" || typeof kind !== "string")
        return "apiVersion and kind must be strings";
    const { group, version } = groupVersion(apiVersion);
    const file = path.join(tools, "node_modules/kubernetes-models", group || "", version, `${kind}.js`);
    if (!fs.existsSync(file)) return `unknown apiVersion/kind ${apiVersion} ${kind}`;
    const mod = await import(pathToFileURL(path.resolve(file)).href);
    try {
        new mod[kind](doc.obj).validate();
        return null;
    } catch (e) {
        return e.message.replace(/\s+/g, " ");
    }
}

// ---- check 2: TypeScript excess-property and type checks on kubernetes-types ----

// Serializes v as a TS literal, one property per line, noting each line's path in `paths`.
function literal(v, pathSoFar, indent, lines, paths) {
    const pad = "  ".repeat(indent);
    const open = (s) => {
        lines[lines.length - 1] += s;
    };
    if (Array.isArray(v)) {
        open("[");
        v.forEach((x, i) => {
            lines.push(pad + "  ");
            paths.push(`${pathSoFar}[${i}]`);
            literal(x, `${pathSoFar}[${i}]`, indent + 1, lines, paths);
            open(",");
        });
        lines.push(pad + "]");
        paths.push(pathSoFar);
    } else if (v !== null && typeof v === "object") {
        open("{");
        for (const [k, x] of Object.entries(v)) {
            const p = pathSoFar ? `${pathSoFar}.${k}` : k;
            lines.push(`${pad}  ${JSON.stringify(k)}: `);
            paths.push(p);
            literal(x, p, indent + 1, lines, paths);
            open(",");
        }
        lines.push(pad + "}");
        paths.push(pathSoFar);
    } else {
        open(JSON.stringify(v));
    }
}

// docs: [{name, obj}] -> Map name -> [messages]; one TypeScript program for all of them.
function typeCheck(docs) {
    const lines = [];
    const paths = [];
    const owner = []; // line -> doc name
    const result = new Map();
    docs.forEach((d, i) => {
        result.set(d.name, []);
        const { apiVersion, kind } = d.obj;
        const { group, version } = groupVersion(String(apiVersion));
        const mod = `kubernetes-types/${group ? group.split(".")[0] : "core"}/${version}`;
        lines.push(`import type { ${kind} as T${i} } from ${JSON.stringify(mod)};`);
        paths.push("");
        owner.push(d.name);
        lines.push(`export const doc${i}: T${i} = `);
        paths.push("");
        const start = lines.length - 1;
        literal(d.obj, "", 0, lines, paths);
        lines[lines.length - 1] += ";";
        for (let l = start; l < lines.length; l++) owner[l] = d.name;
    });
    const fileName = path.resolve(tools, "manifests.generated.ts");
    const text = lines.join("\n") + "\n";
    const options = {
        strict: true,
        noEmit: true,
        types: [],
        skipLibCheck: true,
        moduleResolution: ts.ModuleResolutionKind.Node10,
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2020,
    };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile;
    host.getSourceFile = (f, lang, ...more) =>
        path.resolve(f) === fileName
            ? ts.createSourceFile(f, text, lang)
            : getSourceFile.call(host, f, lang, ...more);
    const program = ts.createProgram([fileName], options, host);
    for (const diag of ts.getPreEmitDiagnostics(program)) {
        const msg = ts.flattenDiagnosticMessageText(diag.messageText, " ").replace(/\s+/g, " ");
        if (!diag.file || path.resolve(diag.file.fileName) !== fileName) {
            fail(`typescript: ${msg}`);
            continue;
        }
        const { line } = diag.file.getLineAndCharacterOfPosition(diag.start);
        const name = owner[line];
        if (!name) {
            fail(`typescript (import): ${msg}`);
            continue;
        }
        result.get(name).push(`${paths[line] || "(document)"}: ${msg}`);
    }
    return result;
}

// ---- check 3: the manifests agree with each other, the config and the Dockerfile ----

function consistency(docs, dockerfile) {
    try {
        return consistencyProblems(docs, dockerfile);
    } catch (e) {
        return [`the manifests lack a field these checks read: ${e.message}`];
    }
}

function consistencyProblems(docs, dockerfile) {
    const problems = [];
    const byKind = (k) => docs.filter((d) => d.obj.kind === k).map((d) => d.obj);
    const [dep] = byKind("Deployment");
    const [cm] = byKind("ConfigMap");
    if (!dep || !cm) return ["a Deployment and a ConfigMap are expected"];
    const pod = dep.spec.template;
    const labels = pod.metadata?.labels ?? {};
    const selects = (sel) =>
        sel && Object.entries(sel).every(([k, v]) => labels[k] === v) && Object.keys(sel).length;
    const c = pod.spec.containers.find((x) => x.name === "inferd") ?? pod.spec.containers[0];
    const text = cm.data?.["inferd.yaml"];
    if (!text) return ["ConfigMap data has no inferd.yaml"];
    const cfg = YAML.parse(text, { version: "1.1" });
    const server = cfg.server ?? {};
    const port = server.port ?? 8080;

    // CPU = sum of workers x threads (threads 0 would count the node's cores)
    let threads = 0;
    for (const m of cfg.models ?? []) {
        if (!m.threads) problems.push(`model ${m.name}: set threads explicitly (0 = node's cores)`);
        threads += (m.workers ?? 1) * (m.threads ?? 0);
    }
    const cpu = (q) => (String(q).endsWith("m") ? parseInt(q, 10) / 1000 : Number(q));
    for (const kind of ["requests", "limits"]) {
        const q = c.resources?.[kind]?.cpu;
        if (cpu(q) !== threads)
            problems.push(`resources.${kind}.cpu is ${q}, the config's workers x threads is ${threads}`);
    }
    // the grace period covers preStop, request_timeout_ms and the daemon's 5 s drain margin
    const pre = c.lifecycle?.preStop?.exec?.command;
    const preSleep = pre && pre[0] === "sleep" ? Number(pre[1]) : 0;
    const needed = preSleep + (server.request_timeout_ms ?? 30000) / 1000 + 5;
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    if (grace <= needed)
        problems.push(`terminationGracePeriodSeconds ${grace} <= preStop ${preSleep} s + drain ${needed - preSleep} s`);
    // probes and ports
    const named = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
    const probePort = (p) => (typeof p === "string" ? named[p] : p);
    const want = { readinessProbe: "/ready", livenessProbe: "/health" };
    for (const [probe, p] of Object.entries(want)) {
        const g = c[probe]?.httpGet;
        if (!g || g.path !== p) problems.push(`${probe} must GET ${p}`);
        else if (probePort(g.port) !== port) problems.push(`${probe} port is not server.port ${port}`);
    }
    if (c.startupProbe && probePort(c.startupProbe.httpGet?.port) !== port)
        problems.push(`startupProbe port is not server.port ${port}`);
    const ann = pod.metadata?.annotations ?? {};
    if (ann["prometheus.io/scrape"] !== "true" || Number(ann["prometheus.io/port"]) !== port)
        problems.push(`prometheus.io annotations must scrape port ${port}`);
    // the config file the container is told to read lives in the ConfigMap's mount
    const args = [...(c.command ?? []), ...(c.args ?? [])];
    const cfgPath = args[args.indexOf("--config") + 1];
    const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
    const vol = (pod.spec.volumes ?? []).find((v) =>
        [v.configMap, ...(v.projected?.sources ?? []).map((s) => s.configMap)].some(
            (s) => s && s.name === cm.metadata.name
        )
    );
    if (!vol || !cfgPath || path.dirname(cfgPath) !== mounts[vol.name])
        problems.push(`--config ${cfgPath} is not the ConfigMap's mount`);
    // the api keys file comes from a mounted Secret
    if (server.api_keys_file) {
        const secretPaths = (pod.spec.volumes ?? []).flatMap((v) =>
            (v.projected?.sources ?? [])
                .filter((s) => s.secret)
                .flatMap((s) => (s.secret.items ?? []).map((it) => path.join(mounts[v.name] ?? "?", it.path)))
        );
        if (!secretPaths.includes(server.api_keys_file))
            problems.push(`api_keys_file ${server.api_keys_file} is not a mounted Secret item`);
    }
    // selectors and targets
    if (!selects(dep.spec.selector?.matchLabels)) problems.push("Deployment selector misses its pods");
    for (const s of byKind("Service"))
        if (!selects(s.spec.selector)) problems.push(`Service ${s.metadata.name} selects no inferd pod`);
    for (const p of byKind("PodDisruptionBudget"))
        if (!selects(p.spec.selector?.matchLabels)) problems.push(`PDB ${p.metadata.name} selects no inferd pod`);
    for (const h of byKind("HorizontalPodAutoscaler")) {
        const t = h.spec.scaleTargetRef;
        if (t.kind !== "Deployment" || t.name !== dep.metadata.name)
            problems.push(`HPA ${h.metadata.name} does not scale Deployment ${dep.metadata.name}`);
        const names = (h.spec.metrics ?? []).map((m) => m.pods?.metric?.name ?? m.resource?.name);
        for (const n of ["cpu", "inferd_queue_depth"])
            if (!names.includes(n)) problems.push(`HPA ${h.metadata.name} has no ${n} metric`);
    }
    // the image: EXPOSE and USER as the pod expects
    if (dockerfile) {
        const expose = /^EXPOSE\s+(\d+)/m.exec(dockerfile)?.[1];
        const user = /^USER\s+(\d+)/m.exec(dockerfile)?.[1];
        if (Number(expose) !== port) problems.push(`Dockerfile EXPOSE ${expose} is not ${port}`);
        if (Number(user) !== pod.spec.securityContext?.runAsUser)
            problems.push(`Dockerfile USER ${user} is not runAsUser`);
    }
    return problems;
}

// ---- the run ----

const docs = loadManifests(manifestDir);
if (failures) {
    console.error(`k8s: ${failures} YAML problem(s)`);
    process.exit(1);
}
const kinds = new Set(docs.map((d) => d.obj.kind));
for (const k of ["Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"])
    if (!kinds.has(k)) fail(`no ${k} in ${manifestDir}`);

// the negative copies of the Deployment, each with the check that must reject it
const depDoc = docs.find((d) => d.obj.kind === "Deployment");
const mutants = [];
if (depDoc) {
    const mutate = (name, why, fn) => {
        const obj = structuredClone(depDoc.obj);
        try {
            fn(obj, obj.spec.template.spec.containers[0]);
            mutants.push({ name, why, obj });
        } catch (e) {
            fail(`negative: cannot make the copy with a ${why}: ${e.message}`);
        }
    };
    mutate("typo", "misspelled field readinesProbe", (o, c) => {
        c.readinesProbe = c.readinessProbe;
        delete c.readinessProbe;
    });
    mutate("type", "replicas as a string", (o) => {
        o.spec.replicas = "2";
    });
    mutate("required", "container without a name", (o, c) => {
        delete c.name;
    });
    mutate("nested", "misplaced field (periodSeconds under httpGet)", (o, c) => {
        c.livenessProbe.httpGet.periodSeconds = 10;
    });
    mutate("cpu", "CPU limit off the config's workers x threads", (o, c) => {
        c.resources.limits.cpu = "3";
    });
}

const openapi = new Map();
for (const d of [...docs, ...mutants.map((m) => ({ ...m, where: `mutant ${m.name}` }))])
    openapi.set(d.where, await openapiCheck(d));
const typed = typeCheck([
    ...docs.map((d) => ({ name: d.where, obj: d.obj })),
    ...mutants.map((m) => ({ name: `mutant ${m.name}`, obj: m.obj })),
]);

for (const d of docs) {
    const errs = [openapi.get(d.where), ...typed.get(d.where)].filter(Boolean);
    if (errs.length) fail(`${label(d)}: ${errs.join("; ")}`);
    else console.log(`k8s: ${label(d)}: valid`);
}

const dockerfilePath = path.join(manifestDir, "../../Dockerfile");
const dockerfile = fs.existsSync(dockerfilePath) ? fs.readFileSync(dockerfilePath, "utf8") : null;
const problems = consistency(docs, dockerfile);
for (const p of problems) fail(`consistency: ${p}`);
if (!problems.length)
    console.log("k8s: consistent: CPU = workers x threads, grace period > preStop + drain, probes, " +
        "ports, selectors, HPA target and metrics, config and key mounts, Dockerfile EXPOSE/USER");

// each negative copy must be refused by the check named for it
for (const m of mutants) {
    const name = `mutant ${m.name}`;
    const oa = openapi.get(name);
    const tc = typed.get(name);
    let caught;
    if (m.name === "cpu") {
        const p = consistency(docs.map((d) => (d === depDoc ? { ...d, obj: m.obj } : d)), null);
        caught = p.find((x) => x.includes("cpu"));
    } else {
        caught = tc[0] ?? oa;
        if (m.name === "type" || m.name === "required") caught = oa && tc[0] ? `${oa} | ${tc[0]}` : null;
    }
    if (caught) console.log(`k8s: negative: ${m.why}: rejected (${caught.slice(0, 140)})`);
    else fail(`negative: ${m.why} was accepted`);
}

if (configOut && docs.some((d) => d.obj.kind === "ConfigMap"))
    fs.writeFileSync(configOut, docs.find((d) => d.obj.kind === "ConfigMap").obj.data["inferd.yaml"]);

if (failures) {
    console.error(`k8s: ${failures} problem(s)`);
    process.exit(1);
}
