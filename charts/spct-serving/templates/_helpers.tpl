{{/* Names: <release>-spct-serving unless the release name already says it, 45 chars max
     (KServe adds "-predictor-..." suffixes and Knative routes need a DNS label). */}}
{{- define "spct-serving.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 45 | trimSuffix "-" }}
{{- end }}

{{- define "spct-serving.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 45 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "spct-serving.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "spct-serving.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: spct
{{- end }}

{{- define "spct-serving.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "spct-serving.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* What `spct serve --model` gets: KServe's mount when storageUri is used, else the MLflow URI. */}}
{{- define "spct-serving.modelSource" -}}
{{- if .Values.model.storageUri }}/mnt/models{{ else }}{{ .Values.model.uri }}{{ end }}
{{- end }}

{{/* The vLLM engine's InferenceService and the OpenAI base URL the predictor calls. */}}
{{- define "spct-serving.engineName" -}}
{{- printf "%s-engine" (include "spct-serving.fullname" .) | trunc 45 | trimSuffix "-" }}
{{- end }}

{{- define "spct-serving.engineUrl" -}}
{{- printf "http://%s-predictor.%s.svc.cluster.local/openai/v1" (include "spct-serving.engineName" .) .Release.Namespace }}
{{- end }}
