// Every HTTP path pvc-guardian serves, in one place: the webhook configurations, the kubelet
// probes, the ServiceMonitor/PodMonitor and the read API's clients all name these.

export const mutatePath = "/mutate-v1-pvc";
export const validatePath = "/validate-v1-pvc";
export const healthzPath = "/healthz";
export const readyzPath = "/readyz";
export const metricsPath = "/metrics";
export const backupsPathPrefix = "/v1/backups";
export const auditPath = "/v1/audit";
