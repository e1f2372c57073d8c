// Reads a JSON array of Kubernetes documents on stdin and validates each prometheus-operator
// resource against the operator's CRD schema (the generated validators of
// @kubernetes-models/prometheus-operator). Prints one line per resource; exits 1 on any failure.
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const models = { ServiceMonitor, PodMonitor, PrometheusRule };
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
let failed = false;
for (const doc of JSON.parse(Buffer.concat(chunks).toString())) {
  const Model = doc.apiVersion === "monitoring.coreos.com/v1" ? models[doc.kind] : undefined;
  if (!Model) continue;
  try {
    new Model(doc).validate();
    console.log(`valid ${doc.kind}/${doc.metadata.name}`);
  } catch (error) {
    failed = true;
    console.log(`invalid ${doc.kind}/${doc.metadata.name}: ${error.message}`);
  }
}
process.exit(failed ? 1 : 0);
