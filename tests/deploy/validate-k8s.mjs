// Validates Kubernetes objects against the Kubernetes OpenAPI schema, offline, with the validators
// that the npm package kubernetes-models generates from it (plus the prometheus-operator and Argo CD
// CRD schemas). Usage: node validate-k8s.mjs NODE_MODULES_DIR OBJECTS.json
// OBJECTS.json: a JSON array of objects. Exit 0 when all are valid; 1 with every error otherwise.
// An apiVersion/kind without a schema is an error, not a pass.
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, file] = process.argv.slice(2);
const objects = JSON.parse(readFileSync(file, "utf8"));
const packages = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "argoproj.io": "@kubernetes-models/argo-cd",
};
let failed = 0;
for (const obj of objects) {
  const where = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const pkg = packages[group] ?? "kubernetes-models";
  const path = join(modules, pkg, group, version, `${obj.kind}.js`);
  if (!existsSync(path)) {
    console.log(`FAILED ${where}: no schema for ${obj.apiVersion} ${obj.kind} (${path})`);
    failed++;
    continue;
  }
  const mod = await import(pathToFileURL(path).href);
  try {
    new mod[obj.kind](obj).validate();
    console.log(`valid  ${obj.apiVersion} ${where}`);
  } catch (e) {
    console.log(`FAILED ${obj.apiVersion} ${where}: ${e.message}`);
    failed++;
  }
}
if (objects.length === 0) { console.log("FAILED: no objects"); failed++; }
process.exit(failed ? 1 : 0);
