package deploy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"
)

// chartValues are the keys of the opentelemetry-collector chart's values.schema.json
// (open-telemetry/opentelemetry-helm-charts, charts/opentelemetry-collector) that deploy/helm uses,
// with the schema's types; Kubernetes objects the chart passes through (env, volumes, security
// contexts, claims) have their API types. Decoding is strict, as the schema's additionalProperties:
// false is: a key the chart does not know fails here, as it fails `helm install`. A key added to the
// values must be added here after checking the chart's schema.
type chartValues struct {
	Mode             string `json:"mode"` // daemonset | deployment | statefulset
	FullnameOverride string `json:"fullnameOverride"`
	ReplicaCount     *int32 `json:"replicaCount"`
	Image            struct {
		Repository string `json:"repository"`
		Tag        string `json:"tag"`
		PullPolicy string `json:"pullPolicy"`
	} `json:"image"`
	Command struct {
		Name      string   `json:"name"`
		ExtraArgs []string `json:"extraArgs"`
	} `json:"command"`
	ServiceAccount struct {
		Create      bool              `json:"create"`
		Annotations map[string]string `json:"annotations"`
		Name        string            `json:"name"`
	} `json:"serviceAccount"`
	PodLabels          map[string]string           `json:"podLabels"`
	PodAnnotations     map[string]string           `json:"podAnnotations"`
	PodSecurityContext *corev1.PodSecurityContext  `json:"podSecurityContext"`
	SecurityContext    *corev1.SecurityContext     `json:"securityContext"`
	Resources          corev1.ResourceRequirements `json:"resources"`
	UseGOMEMLIMIT      *bool                       `json:"useGOMEMLIMIT"`
	ExtraEnvs          []corev1.EnvVar             `json:"extraEnvs"`
	Statefulset        struct {
		VolumeClaimTemplates []corev1.PersistentVolumeClaim `json:"volumeClaimTemplates"`
		PodManagementPolicy  string                         `json:"podManagementPolicy"`
	} `json:"statefulset"`
	ExtraVolumes      []corev1.Volume      `json:"extraVolumes"`
	ExtraVolumeMounts []corev1.VolumeMount `json:"extraVolumeMounts"`
	Ports             map[string]chartPort `json:"ports"`
	LivenessProbe     *chartProbe          `json:"livenessProbe"`
	ReadinessProbe    *chartProbe          `json:"readinessProbe"`
	StartupProbe      *chartProbe          `json:"startupProbe"`
	AlternateConfig   map[string]any       `json:"alternateConfig"`
}

type chartPort struct {
	Enabled       bool            `json:"enabled"`
	ContainerPort int32           `json:"containerPort"`
	ServicePort   int32           `json:"servicePort"`
	HostPort      int32           `json:"hostPort"`
	Protocol      corev1.Protocol `json:"protocol"`
	AppProtocol   string          `json:"appProtocol"`
}

// chartProbe is the schema's probe: httpGet with an integer port (no named ports) and a path.
type chartProbe struct {
	InitialDelaySeconds           int32 `json:"initialDelaySeconds"`
	PeriodSeconds                 int32 `json:"periodSeconds"`
	TimeoutSeconds                int32 `json:"timeoutSeconds"`
	SuccessThreshold              int32 `json:"successThreshold"`
	FailureThreshold              int32 `json:"failureThreshold"`
	TerminationGracePeriodSeconds int64 `json:"terminationGracePeriodSeconds"`
	HTTPGet                       struct {
		Port int32  `json:"port"`
		Path string `json:"path"`
	} `json:"httpGet"`
}

// chartDefaultPorts are the ports of the chart's own values.yaml, merged with ours by Helm: each one
// left enabled becomes a container and Service port.
var chartDefaultPorts = map[string]chartPort{
	"otlp":           {Enabled: true, ContainerPort: 4317, ServicePort: 4317, Protocol: "TCP"},
	"otlp-http":      {Enabled: true, ContainerPort: 4318, ServicePort: 4318, Protocol: "TCP"},
	"jaeger-compact": {Enabled: true, ContainerPort: 6831, ServicePort: 6831, Protocol: "UDP"},
	"jaeger-thrift":  {Enabled: true, ContainerPort: 14268, ServicePort: 14268, Protocol: "TCP"},
	"jaeger-grpc":    {Enabled: true, ContainerPort: 14250, ServicePort: 14250, Protocol: "TCP"},
	"zipkin":         {Enabled: true, ContainerPort: 9411, ServicePort: 9411, Protocol: "TCP"},
	"metrics":        {Enabled: false, ContainerPort: 8888, ServicePort: 8888, Protocol: "TCP"},
}

// The chart mounts its ConfigMap at /conf and runs the collector with --config=/conf/relay.yaml.
const chartConfigPath = "/conf/relay.yaml"

// helmDeployment decodes the values file and builds what the chart renders from it: the pod of its
// StatefulSet (templates/_pod.tpl: command /<command.name>, the config argument, the enabled ports,
// MY_POD_IP and GOMEMLIMIT before extraEnvs, the probes, /conf before extraVolumeMounts), the
// ServiceAccount's annotations and the volume claim templates.
func helmDeployment(t *testing.T, path string) deployment {
	t.Helper()
	raw := readFile(t, path)
	var v chartValues
	require.NoError(t, sigsyaml.UnmarshalStrict(raw, &v), "%s: a key or type the chart's schema does not allow", path)
	// The chart passes config through `tpl`: a "{{" would be a template, not configuration.
	require.NotContains(t, string(raw), "{{", "the chart renders values with tpl")
	require.Equal(t, "statefulset", v.Mode, "a StatefulSet: its volume claim template gives the pod its PersistentVolumeClaim")
	require.NotEmpty(t, v.Image.Repository, "the chart requires image.repository")
	require.True(t, v.ServiceAccount.Create, "the chart creates the ServiceAccount that carries the workload identity annotation")
	require.NotEmpty(t, v.AlternateConfig, "alternateConfig replaces the chart's default config (its receivers are not in this distribution)")
	for _, p := range []*chartProbe{v.LivenessProbe, v.ReadinessProbe} {
		require.NotNil(t, p, "liveness and readiness probes are set (the chart's defaults probe 13133 /)")
	}

	d := deployment{name: path, replicas: 1, image: v.Image.Repository + ":" + v.Image.Tag, configFiles: map[string]string{}}
	if v.ReplicaCount != nil {
		d.replicas = *v.ReplicaCount
	}
	// The chart names the ServiceAccount it creates after the release (fullnameOverride) and runs the
	// pod as it.
	d.serviceAccount.Name = v.FullnameOverride
	if d.serviceAccount.Name == "" {
		d.serviceAccount.Name = "<release>-opentelemetry-collector"
	}
	d.serviceAccount.Annotations = v.ServiceAccount.Annotations
	for _, c := range v.Statefulset.VolumeClaimTemplates {
		d.claims = append(d.claims, c.Name)
	}

	c := corev1.Container{Name: "opentelemetry-collector", Image: d.image, Args: []string{"--config=" + chartConfigPath}}
	if v.Command.Name != "" {
		c.Command = []string{"/" + v.Command.Name}
	}
	c.Args = append(c.Args, v.Command.ExtraArgs...)
	for name, p := range mergePorts(v.Ports) {
		if p.Enabled {
			c.Ports = append(c.Ports, corev1.ContainerPort{Name: name, ContainerPort: p.ContainerPort, Protocol: p.Protocol})
		}
	}
	c.Env = []corev1.EnvVar{{Name: "MY_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}}
	if mem, ok := v.Resources.Limits[corev1.ResourceMemory]; ok && v.UseGOMEMLIMIT != nil && *v.UseGOMEMLIMIT {
		// The chart's gomemlimit helper: 80 % of the memory limit, in MiB.
		c.Env = append(c.Env, corev1.EnvVar{Name: "GOMEMLIMIT", Value: fmt.Sprintf("%dMiB", mem.Value()*8/10>>20)})
	}
	c.Env = append(c.Env, v.ExtraEnvs...)
	c.LivenessProbe = v.LivenessProbe.probe()
	c.ReadinessProbe = v.ReadinessProbe.probe()
	if v.StartupProbe != nil {
		c.StartupProbe = v.StartupProbe.probe()
	}
	c.Resources = v.Resources
	c.SecurityContext = v.SecurityContext
	c.VolumeMounts = append([]corev1.VolumeMount{{Name: "opentelemetry-collector-configmap", MountPath: "/conf"}}, v.ExtraVolumeMounts...)

	d.pod.Labels = map[string]string{"app.kubernetes.io/name": "opentelemetry-collector"}
	for k, l := range v.PodLabels {
		d.pod.Labels[k] = l
	}
	d.pod.Annotations = v.PodAnnotations
	d.pod.Spec = corev1.PodSpec{
		ServiceAccountName: d.serviceAccount.Name,
		Containers:         []corev1.Container{c},
		SecurityContext:    v.PodSecurityContext,
		Volumes: append([]corev1.Volume{{Name: "opentelemetry-collector-configmap", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{Items: []corev1.KeyToPath{{Key: "relay", Path: "relay.yaml"}}},
		}}}, v.ExtraVolumes...),
	}

	// The configuration as the chart writes it into its ConfigMap, taken from the file with the YAML
	// parser the other deployments' configs go through (so that numbers compare equal).
	var doc struct {
		AlternateConfig map[string]any `yaml:"alternateConfig"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	text, err := yaml.Marshal(doc.AlternateConfig)
	require.NoError(t, err)
	d.configFiles[chartConfigPath] = string(text)
	d.parseConfig(t)
	return d
}

// mergePorts is Helm's merge of our ports onto the chart's: a field we set wins.
func mergePorts(ours map[string]chartPort) map[string]chartPort {
	out := map[string]chartPort{}
	for name, p := range chartDefaultPorts {
		out[name] = p
	}
	for name, p := range ours {
		m := out[name]
		m.Enabled = p.Enabled // required by the schema in every entry
		if p.ContainerPort != 0 {
			m.ContainerPort = p.ContainerPort
		}
		if p.ServicePort != 0 {
			m.ServicePort = p.ServicePort
		}
		if p.Protocol != "" {
			m.Protocol = p.Protocol
		}
		out[name] = m
	}
	return out
}

func (p *chartProbe) probe() *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: p.HTTPGet.Path, Port: intstr.FromInt32(p.HTTPGet.Port),
		}},
		InitialDelaySeconds: p.InitialDelaySeconds, PeriodSeconds: p.PeriodSeconds, TimeoutSeconds: p.TimeoutSeconds,
		SuccessThreshold: p.SuccessThreshold, FailureThreshold: p.FailureThreshold,
	}
}

// parseGoMemLimit reads GOMEMLIMIT's value (a number of bytes with an optional B, KiB, MiB, GiB suffix).
func parseGoMemLimit(t *testing.T, s string) int64 {
	t.Helper()
	for suffix, unit := range map[string]string{"KiB": "Ki", "MiB": "Mi", "GiB": "Gi", "TiB": "Ti"} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			q, err := resource.ParseQuantity(n + unit)
			require.NoError(t, err, "GOMEMLIMIT=%s", s)
			return q.Value()
		}
	}
	q, err := resource.ParseQuantity(strings.TrimSuffix(s, "B"))
	require.NoError(t, err, "GOMEMLIMIT=%s", s)
	return q.Value()
}
