{{- define "edged.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edged.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "edged.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edged.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "edged.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "edged.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: edged
{{- end -}}

{{- define "edged.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "edged.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "edged.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.flavor -}}{{- $tag = printf "%s-%s" $tag .Values.image.flavor -}}{{- end -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{- define "edged.mqttPasswordDir" -}}/run/secrets/edged-mqtt{{- end -}}

{{/* The daemon's configuration: the user's `config` with the values the chart owns laid over it. */}}
{{- define "edged.config" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- $http := deepCopy (default dict $cfg.http) -}}
{{- $_ := set $http "port" (int .Values.http.port) -}}
{{- $_ := set $cfg "http" $http -}}
{{- $_ := set $cfg "state_dir" "/var/lib/edged" -}}
{{- if .Values.mqtt.existingSecret -}}
{{- $mqtt := deepCopy (default dict $cfg.mqtt) -}}
{{- $_ := set $mqtt "password_file" (printf "%s/%s" (include "edged.mqttPasswordDir" .) .Values.mqtt.passwordKey) -}}
{{- $_ := set $cfg "mqtt" $mqtt -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
