{{/* A worker Deployment. Arguments: dict "root" $ "name" "control" "args" (list) "replicas" N
     "env" (list of env entries) "resources" {} "kubeconfigSecret" "" "serviceAccount" bool */}}
{{- define "parallels.worker" -}}
{{- $ := .root -}}
{{- $v := $.Values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "parallels.fullname" $ }}-worker-{{ .name }}
  labels:
    {{- include "parallels.labels" $ | nindent 4 }}
    app.kubernetes.io/component: worker
    parallels.io/worker: {{ .name }}
spec:
  replicas: {{ .replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ $.Release.Name }}
      parallels.io/worker: {{ .name }}
  strategy:
    # A new worker comes up before the old one drains: partitions move, never wait.
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels:
        {{- include "parallels.labels" $ | nindent 8 }}
        app.kubernetes.io/component: worker
        parallels.io/worker: {{ .name }}
    spec:
      serviceAccountName: {{ include "parallels.serviceAccount" $ }}
      automountServiceAccountToken: {{ .serviceAccount }}
      # Draining: the worker stops polling, gives running activities shutdownSeconds, then
      # leaves the rest to Temporal, which retries them on another worker at once.
      terminationGracePeriodSeconds: {{ add (int $v.controlWorker.shutdownSeconds) 15 }}
      securityContext:
        {{- include "parallels.podSecurity" $ | nindent 8 }}
      {{- with $v.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: worker
          image: {{ include "parallels.image" $ }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args: {{ toJson .args }}
          ports:
            - {name: health, containerPort: 8090}
          env:
            {{- include "parallels.env" $ | nindent 12 }}
            - name: PARALLELS_WORKER_HEALTH_HOST
              value: "0.0.0.0"
            - name: PARALLELS_WORKER_HEALTH_PORT
              value: "8090"
            - name: PARALLELS_HEALTH_URL
              value: http://127.0.0.1:8090/healthz
            - name: PARALLELS_WORKER_SHUTDOWN_SECONDS
              value: {{ int $v.controlWorker.shutdownSeconds | quote }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- include "parallels.envFrom" $ | nindent 10 }}
          readinessProbe:
            httpGet: {path: /healthz, port: health}
            periodSeconds: 10
          livenessProbe:
            httpGet: {path: /healthz, port: health}
            periodSeconds: 20
            failureThreshold: 3
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            {{- include "parallels.containerSecurity" $ | nindent 12 }}
          volumeMounts:
            {{- include "parallels.volumeMounts" $ | nindent 12 }}
            {{- if .kubeconfigSecret }}
            - name: kubeconfig
              mountPath: /etc/parallels/kube
              readOnly: true
            {{- end }}
      volumes:
        {{- include "parallels.volumes" $ | nindent 8 }}
        {{- if .kubeconfigSecret }}
        - name: kubeconfig
          secret:
            secretName: {{ .kubeconfigSecret }}
            items: [{key: config, path: config}]
        {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
