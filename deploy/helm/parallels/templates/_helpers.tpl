{{- define "parallels.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "parallels.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "parallels.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "parallels.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "parallels.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Every execution target the control plane knows: `local` plus each configured cluster. */}}
{{- define "parallels.clusterNames" -}}
{{- $names := list "local" -}}
{{- range .Values.clusters -}}{{- $names = append $names .name -}}{{- end -}}
{{- join "," $names -}}
{{- end -}}

{{/* Settings every process reads (docs/configuration.md). */}}
{{- define "parallels.env" -}}
- name: PARALLELS_TEMPORAL_ADDRESS
  value: {{ .Values.temporal.address | quote }}
- name: PARALLELS_TEMPORAL_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: PARALLELS_TASK_QUEUE
  value: {{ .Values.temporal.taskQueue | quote }}
- name: PARALLELS_MLFLOW_TRACKING_URI
  value: {{ .Values.mlflow.trackingUri | quote }}
- name: PARALLELS_CLUSTERS
  value: {{ include "parallels.clusterNames" . | quote }}
{{- if .Values.temporal.tls.enabled }}
- name: PARALLELS_TEMPORAL_TLS
  value: "true"
{{- if .Values.temporal.tls.serverName }}
- name: PARALLELS_TEMPORAL_TLS_SERVER_NAME
  value: {{ .Values.temporal.tls.serverName | quote }}
{{- end }}
{{- if .Values.temporal.tls.caSecret }}
- name: PARALLELS_TEMPORAL_TLS_CA_FILE
  value: /etc/parallels/temporal-ca/ca.crt
{{- end }}
{{- if .Values.temporal.tls.clientSecret }}
- name: PARALLELS_TEMPORAL_TLS_CERT_FILE
  value: /etc/parallels/temporal-client/tls.crt
- name: PARALLELS_TEMPORAL_TLS_KEY_FILE
  value: /etc/parallels/temporal-client/tls.key
{{- end }}
{{- end }}
{{- if .Values.temporal.apiKeySecret.name }}
- name: PARALLELS_TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.temporal.apiKeySecret.name }}
      key: {{ .Values.temporal.apiKeySecret.key }}
{{- end }}
{{- if .Values.codec.keysSecret }}
- name: PARALLELS_CODEC_KEYS_FILE
  value: /etc/parallels/codec/keys
{{- end }}
{{- end -}}

{{- define "parallels.envFrom" -}}
{{- if .Values.mlflow.credentialsSecret }}
envFrom:
  - secretRef:
      name: {{ .Values.mlflow.credentialsSecret }}
{{- end }}
{{- end -}}

{{/* Volumes for secrets mounted as files, and writable scratch space (the root fs is read-only). */}}
{{- define "parallels.volumes" -}}
- name: state
  emptyDir: {}
- name: tmp
  emptyDir: {}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.caSecret }}
- name: temporal-ca
  secret:
    secretName: {{ .Values.temporal.tls.caSecret }}
    items: [{key: ca.crt, path: ca.crt}]
{{- end }}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.clientSecret }}
- name: temporal-client
  secret:
    secretName: {{ .Values.temporal.tls.clientSecret }}
    items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]
{{- end }}
{{- if .Values.codec.keysSecret }}
- name: codec
  secret:
    secretName: {{ .Values.codec.keysSecret }}
    items: [{key: keys, path: keys}]
{{- end }}
{{- end -}}

{{- define "parallels.volumeMounts" -}}
- name: state
  mountPath: /home/parallels/state
- name: tmp
  mountPath: /tmp
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.caSecret }}
- name: temporal-ca
  mountPath: /etc/parallels/temporal-ca
  readOnly: true
{{- end }}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.clientSecret }}
- name: temporal-client
  mountPath: /etc/parallels/temporal-client
  readOnly: true
{{- end }}
{{- if .Values.codec.keysSecret }}
- name: codec
  mountPath: /etc/parallels/codec
  readOnly: true
{{- end }}
{{- end -}}

{{- define "parallels.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "parallels.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
