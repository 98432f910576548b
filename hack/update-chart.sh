#!/usr/bin/env bash
# Regenerates the Helm chart's templates (charts/seccomp-operator/templates/) from the
# kustomize manifests, so that `helm install` and `kubectl apply -k config/default` create
# the same objects: one template per object of config/default, plus the scheduling gate's
# admission (config/gate-policy on Kubernetes 1.36+, config/gate-webhook before), chosen by the
# cluster's version or the value gateAdmission. Images, their pull policy and the profile
# policy become values (charts/seccomp-operator/values.yaml); the CRDs carry
# helm.sh/resource-policy: keep. Commit the result; the test
# `the_chart_renders_what_kustomize_renders` (e2e/tests/chart.rs) fails while they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(hack/k8s-build.sh --print)"
KUBECTL=${KUBECTL:-$K8S_BIN/kubectl}
out=charts/seccomp-operator/templates
rm -f "$out"/*.yaml

# Split a multi-document stream into one file per object (<kind>-<name>.yaml), each wrapped in
# the condition $2 (or none), with the values substituted.
split() {
  local condition=$1
  awk -v out="$out" -v cond="$condition" '
    function flush() {
      if (doc == "") return
      fname = tolower(kind) "-" name; gsub(/:/, "-", fname)
      file = out "/" fname ".yaml"
      if (cond != "") { printf "{{- if %s }}\n", cond > file }
      printf "%s", doc > file
      if (cond != "") { print "{{- end }}" > file }
      close(file)
      doc = ""; kind = ""; name = ""
    }
    /^---$/ { flush(); next }
    /^kind: / { kind = $2 }
    /^  name: / && name == "" && inmeta { name = $2 }
    /^metadata:/ { inmeta = 1 } /^[a-z]/ && !/^metadata:/ { inmeta = 0 }
    {
      line = $0
      sub(/image: localhost\/seccomp-operator\/operator:dev/, "image: {{ .Values.images.operator | quote }}", line)
      sub(/image: localhost\/seccomp-operator\/node-agent:dev/, "image: {{ .Values.images.nodeAgent | quote }}", line)
      sub(/imagePullPolicy: IfNotPresent/, "imagePullPolicy: {{ .Values.imagePullPolicy }}", line)
      sub(/^  ALLOW_LISTENER_PATH: .*/, "  ALLOW_LISTENER_PATH: {{ .Values.policy.allowListenerPath | quote }}", line)
      sub(/^  ALLOWED_FLAGS: .*/, "  ALLOWED_FLAGS: {{ .Values.policy.allowedFlags | quote }}", line)
      sub(/^  REPORT_DENIALS: .*/, "  REPORT_DENIALS: {{ .Values.policy.reportDenials | quote }}", line)
      sub(/^  SHARED_NAMESPACES: .*/, "  SHARED_NAMESPACES: {{ .Values.policy.sharedNamespaces | quote }}", line)
      sub(/^  COMPLAIN_READY_AFTER: .*/, "  COMPLAIN_READY_AFTER: {{ .Values.policy.complainReadyAfter | quote }}", line)
      sub(/^  COMPLAIN_READY_CONTAINERS: .*/, "  COMPLAIN_READY_CONTAINERS: {{ .Values.policy.complainReadyContainers | quote }}", line)
      sub(/^  ALLOWED_REGISTRIES: .*/, "  ALLOWED_REGISTRIES: {{ .Values.policy.allowedRegistries | quote }}", line)
      sub(/^  REGISTRY_REFUSED_NETWORKS: .*/, "  REGISTRY_REFUSED_NETWORKS: {{ .Values.policy.registryRefusedNetworks | quote }}", line)
      doc = doc line "\n"
      # Helm keeps the CRDs, and with them every profile, on `helm uninstall`.
      if (line == "metadata:" && kind == "CustomResourceDefinition") {
        doc = doc "  annotations:\n    helm.sh/resource-policy: keep\n"
      }
    }
    END { flush() }'
}

"$KUBECTL" kustomize config/default | split ""
policy='or (eq .Values.gateAdmission "policy") (and (eq .Values.gateAdmission "auto") (semverCompare ">=1.36-0" .Capabilities.KubeVersion.Version))'
"$KUBECTL" kustomize config/gate-policy | split "$policy"
"$KUBECTL" kustomize config/gate-webhook | split "not ($policy)"
echo "wrote $(ls "$out" | wc -l) templates into $out"
