package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizations are every directory `kubectl apply -k` is pointed at.
var kustomizations = []string{
	"kubernetes/base",
	"kubernetes/overlays/keda",
	"kubernetes/overlays/hpa",
	"kubernetes/overlays/strimzi-debezium",
}

// kafkaConnector is Strimzi's KafkaConnector (kafka.strimzi.io/v1beta2),
// field for field as its CRD defines spec; Strimzi publishes no Go types.
type kafkaConnector struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Class       string         `json:"class"`
		TasksMax    int            `json:"tasksMax"`
		Version     string         `json:"version,omitempty"`
		Config      map[string]any `json:"config"`
		State       string         `json:"state,omitempty"`
		Pause       bool           `json:"pause,omitempty"`
		AutoRestart *struct {
			Enabled     bool `json:"enabled"`
			MaxRestarts int  `json:"maxRestarts,omitempty"`
		} `json:"autoRestart,omitempty"`
		AlterOffsets *struct {
			FromConfigMap struct {
				Name string `json:"name"`
			} `json:"fromConfigMap"`
		} `json:"alterOffsets,omitempty"`
		ListOffsets *struct {
			ToConfigMap struct {
				Name string `json:"name"`
			} `json:"toConfigMap"`
		} `json:"listOffsets,omitempty"`
	} `json:"spec"`
}

// newObject returns the Go type of an apiVersion and kind, or nil for a kind
// the deployment is not expected to hold.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}
	case "keda.sh/v1alpha1 ScaledObject":
		return &kedav1alpha1.ScaledObject{}
	case "kafka.strimzi.io/v1beta2 KafkaConnector":
		return &kafkaConnector{}
	}
	return nil
}

// decodeStrict decodes one YAML object into its API type; an unknown,
// misspelled or duplicated field is an error.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	obj := newObject(tm.APIVersion, tm.Kind)
	if obj == nil {
		return nil, fmt.Errorf("unexpected kind %s %s", tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// rendered is what one kustomization renders, decoded.
type rendered struct {
	dir         string
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	configMaps  map[string]*corev1.ConfigMap
	pdbs        map[string]*policyv1.PodDisruptionBudget
	hpas        map[string]*autoscalingv2.HorizontalPodAutoscaler
	scaledObjs  map[string]*kedav1alpha1.ScaledObject
	connectors  map[string]*kafkaConnector
	objects     int
	// errs are the objects that did not decode (reported by
	// TestEveryKustomizationRendersAndDecodesStrictly; the other tests go on
	// with the objects that did).
	errs []string
}

var (
	renderOnce sync.Once
	renders    map[string]*rendered
	renderErr  error
)

// renderAll runs kustomize (krusty, as `kustomize build` does) on every
// kustomization once per test binary and decodes the result strictly.
func renderAll(t *testing.T) map[string]*rendered {
	t.Helper()
	renderOnce.Do(func() {
		renders = map[string]*rendered{}
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		for _, dir := range kustomizations {
			m, err := k.Run(filesys.MakeFsOnDisk(), dir)
			if err != nil {
				renderErr = fmt.Errorf("kustomize build %s: %w", dir, err)
				return
			}
			r := &rendered{dir: dir, deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
				configMaps: map[string]*corev1.ConfigMap{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
				hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, scaledObjs: map[string]*kedav1alpha1.ScaledObject{},
				connectors: map[string]*kafkaConnector{}}
			for _, res := range m.Resources() {
				doc, err := res.AsYAML()
				if err != nil {
					renderErr = fmt.Errorf("%s: %w", dir, err)
					return
				}
				r.objects++
				obj, err := decodeStrict(doc)
				if err != nil {
					r.errs = append(r.errs, fmt.Sprintf("%s %s: %v", res.GetKind(), res.GetName(), err))
					continue
				}
				switch o := obj.(type) {
				case *appsv1.Deployment:
					r.deployments[o.Name] = o
				case *corev1.Service:
					r.services[o.Name] = o
				case *corev1.ConfigMap:
					r.configMaps[o.Name] = o
				case *policyv1.PodDisruptionBudget:
					r.pdbs[o.Name] = o
				case *autoscalingv2.HorizontalPodAutoscaler:
					r.hpas[o.Name] = o
				case *kedav1alpha1.ScaledObject:
					r.scaledObjs[o.Name] = o
				case *kafkaConnector:
					r.connectors[o.Name] = o
				}
			}
			renders[dir] = r
		}
	})
	if renderErr != nil {
		t.Fatal(renderErr)
	}
	return renders
}

// TestEveryKustomizationRendersAndDecodesStrictly: kustomize builds the base
// and every overlay, and every object decodes into its API type without an
// unknown field. The kustomization files decode strictly too.
func TestEveryKustomizationRendersAndDecodesStrictly(t *testing.T) {
	want := map[string]int{ // objects per kustomization
		"kubernetes/base":                      13, // 4 ConfigMaps, 3 × (Deployment, Service, PDB)
		"kubernetes/overlays/keda":             15, // + 2 ScaledObjects
		"kubernetes/overlays/hpa":              15, // + 2 HPAs
		"kubernetes/overlays/strimzi-debezium": 2,  // 2 KafkaConnectors
	}
	for dir, r := range renderAll(t) {
		if r.objects != want[dir] {
			t.Errorf("%s renders %d objects, want %d", dir, r.objects, want[dir])
		}
		for _, e := range r.errs {
			t.Errorf("%s: %s", dir, e)
		}
	}
	for _, dir := range kustomizations {
		b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var k types.Kustomization
		if err := yaml.UnmarshalStrict(b, &k); err != nil {
			t.Errorf("%s/kustomization.yaml: %v", dir, err)
		}
	}
}

// TestStrictDecodingCatchesMisspelledFields is the check behind the check:
// a misspelled or unknown field fails, in core and in CRD types alike.
func TestStrictDecodingCatchesMisspelledFields(t *testing.T) {
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"deployment", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: c, livenessProbe: {httpGet: {path: /healthz, port: 9090}}}]\n", true},
		{"misspelled probe", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: c, livenesProbe: {httpGet: {path: /healthz, port: 9090}}}]\n", false},
		{"unknown top-level field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspecs: {}\n", false},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: a}\ndata: {B: b}\n", false},
		{"scaledobject", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: x}\n  triggers: [{type: kafka, metadata: {lagThreshold: '1'}}]\n", true},
		{"scaledobject misspelled", "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: x}\nspec:\n  scaleTargetRef: {name: x}\n  maxReplicas: 3\n  triggers: [{type: kafka, metadata: {lagThreshold: '1'}}]\n", false},
		{"connector misspelled", "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaConnector\nmetadata: {name: x}\nspec: {class: c, taskMax: 1, config: {}}\n", false},
		{"unexpected kind", "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {password: hunter2}\n", false},
	}
	for _, tt := range tests {
		_, err := decodeStrict([]byte(tt.doc))
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

// command is what `portalmail help <command>` says about one command.
type command struct {
	flags map[string]bool   // flag names, without --
	env   map[string]string // PORTALMAIL_* → flag name
	defs  map[string]string // flag name → default
	// secret flags: read from a file (--name-file) rather than given as a
	// value ("prefer --x-file", "or --x-file" in the help).
	secret map[string]bool
}

var (
	binOnce sync.Once
	bin     string
	binErr  error
)

// TestMain removes the portalmail binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if bin != "" {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

// help runs `portalmail help name` of a binary built from this checkout,
// with no PORTALMAIL_* variable set (so the defaults are the built-in ones).
func help(t *testing.T, name string) command {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "portalmail-deploy-test")
		if err != nil {
			binErr = err
			return
		}
		bin = filepath.Join(dir, "portalmail")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/portalmail")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	cmd := exec.Command(bin, "help", name)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("portalmail help %s: %v", name, err)
	}
	c := command{flags: map[string]bool{}, env: map[string]string{}, defs: map[string]string{}, secret: map[string]bool{}}
	flagLine := regexp.MustCompile(`^  --([a-z0-9-]+)`)
	envOf := regexp.MustCompile(`\(env (PORTALMAIL_[A-Z0-9_]+)(?:, default "([^"]*)")?\)$`)
	fileOf := regexp.MustCompile(`\((?:prefer|or) --([a-z0-9-]+)-file\)`)
	var last string
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			c.flags[last] = true
			continue
		}
		if m := envOf.FindStringSubmatch(line); m != nil && last != "" {
			c.env[m[1]] = last
			c.defs[last] = m[2]
		}
		if m := fileOf.FindStringSubmatch(line); m != nil {
			c.secret[m[1]] = true
		}
	}
	if len(c.flags) == 0 {
		t.Fatalf("portalmail help %s lists no flags:\n%s", name, out)
	}
	return c
}

// envName is the variable of a flag: PORTALMAIL_<NAME>.
func envName(flag string) string {
	return "PORTALMAIL_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// containerEnv is a container's environment as Kubernetes builds it: the
// ConfigMaps of envFrom, then env. Values from elsewhere (fieldRef,
// secretKeyRef) are marked with from.
type envVar struct{ value, from string }

func containerEnv(t *testing.T, r *rendered, c corev1.Container) map[string]envVar {
	t.Helper()
	env := map[string]envVar{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("%s: container %s: envFrom must be a ConfigMap (secrets are files): %+v", r.dir, c.Name, ef)
			continue
		}
		cm, ok := r.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: container %s: envFrom ConfigMap %s is not in the kustomization", r.dir, c.Name, ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = envVar{v, "configmap " + cm.Name}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = envVar{e.Value, "env"}
		case e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = envVar{"", "secretKeyRef"}
		default:
			env[e.Name] = envVar{"", "valueFrom"}
		}
	}
	return env
}

// commandOf is the portalmail command a container runs (its first argument).
func commandOf(c corev1.Container) string {
	if len(c.Args) == 0 {
		return ""
	}
	return c.Args[0]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// yamlFiles are every YAML file under kubernetes/.
func yamlFiles(t *testing.T) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir("kubernetes", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no YAML under kubernetes/")
	}
	return files
}

// docs splits a YAML stream into its documents.
func docs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range bytes.Split(b, []byte("\n---")) {
		if len(bytes.TrimSpace(d)) > 0 {
			out = append(out, d)
		}
	}
	return out
}
