package observability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// k8sObject is the part of a Kubernetes object these tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name        string            `yaml:"name"`
		Namespace   string            `yaml:"namespace"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec yaml.Node         `yaml:"spec"`

	file string
}

func (o *k8sObject) decodeSpec(t testing.TB, v any) {
	t.Helper()
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s %s (%s): spec: %v", o.Kind, o.Metadata.Name, o.file, err)
	}
}

// parseManifests reads every document of a multi-document YAML stream.
func parseManifests(t testing.TB, name string, r io.Reader) []*k8sObject {
	t.Helper()
	dec := yaml.NewDecoder(r)
	var out []*k8sObject
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if o.Kind == "" {
			continue // an empty document
		}
		if o.APIVersion == "" || o.Metadata.Name == "" {
			t.Errorf("%s: a %s without apiVersion or metadata.name", name, o.Kind)
		}
		o.file = name
		out = append(out, &o)
	}
}

type envVar struct {
	Name      string `yaml:"name"`
	Value     string `yaml:"value"`
	ValueFrom *struct {
		FieldRef *struct {
			FieldPath string `yaml:"fieldPath"`
		} `yaml:"fieldRef"`
	} `yaml:"valueFrom"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Env   []envVar `yaml:"env"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

type statefulSetSpec struct {
	ServiceName string `yaml:"serviceName"`
	Replicas    int    `yaml:"replicas"`
	Selector    struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template struct {
		Metadata struct {
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"metadata"`
		Spec struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
				FSGroup      int  `yaml:"fsGroup"`
			} `yaml:"securityContext"`
			Containers []container `yaml:"containers"`
			Volumes    []struct {
				Name      string `yaml:"name"`
				ConfigMap *struct {
					Name string `yaml:"name"`
				} `yaml:"configMap"`
				Secret *struct {
					SecretName string `yaml:"secretName"`
					Optional   bool   `yaml:"optional"`
					Items      []struct {
						Key  string `yaml:"key"`
						Path string `yaml:"path"`
					} `yaml:"items"`
				} `yaml:"secret"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	} `yaml:"template"`
	VolumeClaimTemplates []struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			AccessModes []string `yaml:"accessModes"`
			Resources   struct {
				Requests map[string]string `yaml:"requests"`
			} `yaml:"resources"`
		} `yaml:"spec"`
	} `yaml:"volumeClaimTemplates"`
}

// loadK8sDir reads the manifests a kustomization.yaml lists (resources that are files, and the
// kustomizations of resources that are directories), checking that each exists.
func loadK8sDir(t testing.TB, dir string) []*k8sObject {
	t.Helper()
	var k struct {
		Resources []string `yaml:"resources"`
	}
	loadYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	if len(k.Resources) == 0 {
		t.Fatalf("%s/kustomization.yaml lists no resources", dir)
	}
	var out []*k8sObject
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s/kustomization.yaml: resource %s: %v", dir, r, err)
		}
		if fi.IsDir() {
			out = append(out, loadK8sDir(t, p)...)
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(repoRoot, p)
		out = append(out, parseManifests(t, rel, f)...)
		f.Close()
	}
	return out
}

func byKind(objs []*k8sObject, kind string) []*k8sObject {
	var out []*k8sObject
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// selects reports whether a label selector matches labels.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestKubernetesManifests checks deploy/k8s: the StatefulSet, its headless Service, the pipeline
// ConfigMap (which `streamd validate` must accept, and which must match configs/fraud-pipeline.yaml
// outside the cluster settings), the PodDisruptionBudget and the PodMonitor; then renders both
// kustomizations with kubectl and, if a cluster answers, `kubectl apply --dry-run=client`.
func TestKubernetesManifests(t *testing.T) {
	base := loadK8sDir(t, repoPath("deploy", "k8s"))
	withPM := loadK8sDir(t, repoPath("deploy", "k8s", "prometheus-operator"))

	// Every manifest file in deploy/k8s is in a kustomization.
	listed := map[string]bool{}
	for _, o := range append(append([]*k8sObject(nil), base...), withPM...) {
		listed[o.file] = true
	}
	_ = filepath.Walk(repoPath("deploy", "k8s"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && strings.HasSuffix(p, ".yaml") && fi.Name() != "kustomization.yaml" {
			rel, _ := filepath.Rel(repoRoot, p)
			if !listed[rel] {
				t.Errorf("%s is in no kustomization", rel)
			}
		}
		return nil
	})

	stss := byKind(base, "StatefulSet")
	if len(stss) != 1 {
		t.Fatalf("deploy/k8s: %d StatefulSets, want 1", len(stss))
	}
	sts := stss[0]
	var spec statefulSetSpec
	sts.decodeSpec(t, &spec)
	podLabels := spec.Template.Metadata.Labels
	if !selects(spec.Selector.MatchLabels, podLabels) {
		t.Errorf("StatefulSet selector %v does not match its pod labels %v", spec.Selector.MatchLabels, podLabels)
	}
	if len(spec.Template.Spec.Containers) != 1 {
		t.Fatalf("StatefulSet: %d containers, want 1", len(spec.Template.Spec.Containers))
	}
	c := spec.Template.Spec.Containers[0]
	env := map[string]envVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}

	// Static membership: the instance id is the pod name.
	if e, ok := env["STREAMD_INSTANCE_ID"]; !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("STREAMD_INSTANCE_ID must come from the pod name (fieldRef metadata.name): %+v", e)
	}
	if env["KAFKA_BROKERS"].Value == "" {
		t.Errorf("KAFKA_BROKERS is not set")
	}

	// The admin port: STREAMD_ADMIN_LISTEN, the container port, the probes, the annotations.
	listen := env["STREAMD_ADMIN_LISTEN"].Value
	host, portStr, ok := strings.Cut(listen, ":")
	adminPort, _ := strconv.Atoi(portStr)
	if !ok || host != "0.0.0.0" || adminPort == 0 {
		t.Fatalf("STREAMD_ADMIN_LISTEN %q, want 0.0.0.0:PORT", listen)
	}
	portName := ""
	for _, p := range c.Ports {
		if p.ContainerPort == adminPort {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("the container does not expose the admin port %d (ports %+v)", adminPort, c.Ports)
	}
	probePort := func(what string, p *probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no httpGet probe", what)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("%s: path %q, want %s", what, p.HTTPGet.Path, path)
		}
		if fmt.Sprint(p.HTTPGet.Port) != portName && fmt.Sprint(p.HTTPGet.Port) != strconv.Itoa(adminPort) {
			t.Errorf("%s: port %v, want the admin port (%s, %d)", what, p.HTTPGet.Port, portName, adminPort)
		}
	}
	probePort("readinessProbe", c.ReadinessProbe, "/readyz")
	probePort("livenessProbe", c.LivenessProbe, "/healthz")
	ann := spec.Template.Metadata.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(adminPort) || ann["prometheus.io/path"] != "/metrics" {
		t.Errorf("pod annotations %v: want prometheus.io/scrape true, port %d, path /metrics", ann, adminPort)
	}

	// Resources.
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no resources.requests.%s", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("no resources.limits.memory")
	}

	// State: the volumeClaimTemplate is mounted at STREAMD_STATE_DIR, writable by the image's user.
	stateDir := env["STREAMD_STATE_DIR"].Value
	if len(spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("%d volumeClaimTemplates, want 1 (the state)", len(spec.VolumeClaimTemplates))
	}
	vct := spec.VolumeClaimTemplates[0]
	if vct.Spec.Resources.Requests["storage"] == "" || len(vct.Spec.AccessModes) == 0 {
		t.Errorf("volumeClaimTemplate %s: no storage request or access mode", vct.Metadata.Name)
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	if stateDir == "" || mounts[vct.Metadata.Name] != stateDir {
		t.Errorf("STREAMD_STATE_DIR %q is not where the volumeClaimTemplate %s is mounted (%q)", stateDir, vct.Metadata.Name, mounts[vct.Metadata.Name])
	}
	if sc := spec.Template.Spec.SecurityContext; !sc.RunAsNonRoot || sc.FSGroup != 65532 {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and fsGroup 65532 (the distroless nonroot user owns the state volume)", sc)
	}

	// The pipeline ConfigMap is mounted where args point.
	if len(c.Args) != 3 || c.Args[0] != "run" || c.Args[1] != "-config" {
		t.Fatalf("args %v, want run -config FILE", c.Args)
	}
	cfgFile := c.Args[2]
	var cm *k8sObject
	for _, v := range spec.Template.Spec.Volumes {
		if v.ConfigMap == nil || mounts[v.Name] != filepath.Dir(cfgFile) {
			continue
		}
		for _, o := range byKind(base, "ConfigMap") {
			if o.Metadata.Name == v.ConfigMap.Name {
				cm = o
			}
		}
	}
	if cm == nil {
		t.Fatalf("no ConfigMap of deploy/k8s is mounted at %s", filepath.Dir(cfgFile))
	}
	pipeline, ok := cm.Data[filepath.Base(cfgFile)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, filepath.Base(cfgFile))
	}
	// The admin token: a file of a Secret volume, which the PodMonitor scrapes with too.
	tokenFile := env["STREAMD_ADMIN_TOKEN_FILE"].Value
	tokenSecret, tokenKey := "", ""
	for _, v := range spec.Template.Spec.Volumes {
		if v.Secret == nil || mounts[v.Name] == "" || !strings.HasPrefix(tokenFile, mounts[v.Name]+"/") {
			continue
		}
		if v.Secret.Optional {
			t.Errorf("the admin token's Secret volume %s is optional: a pod without it would start with an open admin port", v.Name)
		}
		file := strings.TrimPrefix(tokenFile, mounts[v.Name]+"/")
		tokenSecret, tokenKey = v.Secret.SecretName, file
		for _, it := range v.Secret.Items {
			if it.Path == file {
				tokenKey = it.Key
			}
		}
	}
	if tokenSecret == "" {
		t.Errorf("STREAMD_ADMIN_TOKEN_FILE %q is not in a mounted Secret volume", tokenFile)
	}
	checkClusterPipeline(t, pipeline, env)

	// Shutdown: the grace period leaves room for kafka.shutdown_timeout.
	var pl struct {
		Kafka struct {
			ShutdownTimeout string `yaml:"shutdown_timeout"`
		} `yaml:"kafka"`
	}
	_ = yaml.Unmarshal([]byte(pipeline), &pl)
	if d, err := time.ParseDuration(pl.Kafka.ShutdownTimeout); err != nil || time.Duration(spec.Template.Spec.TerminationGracePeriodSeconds)*time.Second < d+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d must exceed kafka.shutdown_timeout %q by 10s or more", spec.Template.Spec.TerminationGracePeriodSeconds, pl.Kafka.ShutdownTimeout)
	}

	// The headless Service governs the StatefulSet and selects its pods.
	var svc *k8sObject
	for _, o := range byKind(base, "Service") {
		if o.Metadata.Name == spec.ServiceName {
			svc = o
		}
	}
	if svc == nil {
		t.Fatalf("no Service %q (the StatefulSet's serviceName)", spec.ServiceName)
	}
	var ss struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort any    `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	svc.decodeSpec(t, &ss)
	if ss.ClusterIP != "None" {
		t.Errorf("Service %s: clusterIP %q, want None (headless)", svc.Metadata.Name, ss.ClusterIP)
	}
	if !selects(ss.Selector, podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", ss.Selector, podLabels)
	}
	if len(ss.Ports) == 0 || ss.Ports[0].Port != adminPort || (fmt.Sprint(ss.Ports[0].TargetPort) != portName && fmt.Sprint(ss.Ports[0].TargetPort) != portStr) {
		t.Errorf("Service ports %+v, want the admin port %d", ss.Ports, adminPort)
	}

	// The PodDisruptionBudget selects the pods.
	for _, o := range byKind(base, "PodDisruptionBudget") {
		var p struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		}
		o.decodeSpec(t, &p)
		if !selects(p.Selector.MatchLabels, podLabels) {
			t.Errorf("PodDisruptionBudget %s does not select the pods", o.Metadata.Name)
		}
	}

	// The PodMonitor scrapes the admin port of the same pods.
	pms := byKind(withPM, "PodMonitor")
	if len(pms) != 1 {
		t.Fatalf("deploy/k8s/prometheus-operator: %d PodMonitors, want 1", len(pms))
	}
	var pm struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port          string `yaml:"port"`
			Path          string `yaml:"path"`
			Interval      string `yaml:"interval"`
			Authorization *struct {
				Type        string `yaml:"type"`
				Credentials struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"credentials"`
			} `yaml:"authorization"`
		} `yaml:"podMetricsEndpoints"`
	}
	pms[0].decodeSpec(t, &pm)
	if !selects(pm.Selector.MatchLabels, podLabels) {
		t.Errorf("PodMonitor selector %v does not select the pods %v", pm.Selector.MatchLabels, podLabels)
	}
	if len(pm.Endpoints) != 1 || pm.Endpoints[0].Port != portName || pm.Endpoints[0].Path != "/metrics" {
		t.Errorf("PodMonitor endpoints %+v, want port %s path /metrics", pm.Endpoints, portName)
	} else if a := pm.Endpoints[0].Authorization; a == nil || (a.Type != "" && a.Type != "Bearer") || a.Credentials.Name != tokenSecret || a.Credentials.Key != tokenKey {
		t.Errorf("PodMonitor authorization %+v, want Bearer credentials from Secret %s key %s (the admin token the pods mount)", a, tokenSecret, tokenKey)
	}

	t.Run("kubectl_kustomize", func(t *testing.T) { kustomizeChecks(t, len(base), len(withPM)) })
	t.Run("kubectl_apply_dry_run", applyDryRun)
}

// checkClusterPipeline runs `streamd validate` on the ConfigMap's pipeline with the pod's
// environment, and compares it with configs/fraud-pipeline.yaml outside the cluster settings.
func checkClusterPipeline(t *testing.T, pipeline string, env map[string]envVar) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(path, []byte(pipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	// The pod's environment, with the state directory and the admin token's file (a Secret's, in
	// the pod) made here.
	podEnv := map[string]string{}
	for _, e := range env {
		v := e.Value
		if e.ValueFrom != nil {
			v = "streamd-0" // the pod name
		}
		podEnv[e.Name] = v
	}
	podEnv["STREAMD_STATE_DIR"] = t.TempDir()
	// With the token it validates; without it, it is refused: the admin port is never open.
	checkSecureByDefault(t, path, podEnv, "STREAMD_ADMIN_TOKEN_FILE")

	var cluster, example map[string]any
	if err := yaml.Unmarshal([]byte(pipeline), &cluster); err != nil {
		t.Fatal(err)
	}
	loadYAML(t, repoPath("configs", "fraud-pipeline.yaml"), &example)
	// The settings a cluster changes; everything else must be the example's.
	for _, key := range [][]string{
		{"kafka", "brokers"}, {"kafka", "shutdown_timeout"}, {"kafka", "leave_group_on_shutdown"},
		{"state", "dir"}, {"state", "cache_size"}, {"admin", "listen"}, {"log", "format"}, {"log", "level"},
	} {
		for _, m := range []map[string]any{cluster, example} {
			if sub, ok := m[key[0]].(map[string]any); ok {
				delete(sub, key[1])
			}
		}
	}
	for k := range maps.Keys(example) {
		if !reflect.DeepEqual(cluster[k], example[k]) {
			t.Errorf("deploy/k8s ConfigMap: %s differs from configs/fraud-pipeline.yaml:\n  cluster: %v\n  example: %v", k, cluster[k], example[k])
		}
	}
	for k := range maps.Keys(cluster) {
		if _, ok := example[k]; !ok {
			t.Errorf("deploy/k8s ConfigMap: %s is not in configs/fraud-pipeline.yaml", k)
		}
	}
}

// kustomizeChecks renders the kustomizations with kubectl (offline).
func kustomizeChecks(t *testing.T, nBase, nWithPM int) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the kustomizations were not rendered")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for dir, want := range map[string]int{"deploy/k8s": nBase, "deploy/k8s/prometheus-operator": nWithPM} {
		out, err := runTool(ctx, repoRoot, kubectl, "kustomize", dir)
		if err != nil {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
		}
		objs := parseManifests(t, "kubectl kustomize "+dir, strings.NewReader(out))
		if len(objs) != want {
			t.Errorf("kubectl kustomize %s: %d objects, want %d", dir, len(objs), want)
		}
		for _, o := range objs {
			if o.Metadata.Labels["app.kubernetes.io/part-of"] != "streamd" {
				t.Errorf("kubectl kustomize %s: %s %s has no app.kubernetes.io/part-of label", dir, o.Kind, o.Metadata.Name)
			}
		}
	}
}

// applyDryRun runs `kubectl apply --dry-run=client -k deploy/k8s` when a cluster answers: a
// client-side dry run still asks the API server for its resource types.
func applyDryRun(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	probe := exec.CommandContext(ctx, kubectl, "version", "-o", "yaml", "--request-timeout=5s")
	probe.Stdout, probe.Stderr = &stdout, &stderr
	if err := probe.Run(); err != nil || !strings.Contains(stdout.String(), "serverVersion") {
		t.Skipf("no Kubernetes cluster answers kubectl (%s): `kubectl apply --dry-run=client` not run (the manifests are checked field by field and rendered with kubectl kustomize)",
			strings.TrimSpace(firstLines(stderr.String(), 1)))
	}
	out, err := runTool(ctx, repoRoot, kubectl, "apply", "--dry-run=client", "-k", "deploy/k8s")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=client -k deploy/k8s: %v\n%s", err, out)
	}
	t.Logf("kubectl apply --dry-run=client -k deploy/k8s:\n%s", out)
}
