package deploy_test

import (
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/portalmail/portalmail/schemas/cdc"
)

// stages are the commands the base runs, with the Deployment of each.
var stages = map[string]string{
	"portalmail-process":  "process",
	"portalmail-send":     "send",
	"portalmail-webhooks": "webhooks",
}

// envAllowed are variables that are not portalmail flags but may be set.
var envAllowed = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GODEBUG": true}

// TestDeploymentsUseOnlyFlagsTheCommandsHave: every PORTALMAIL_* variable a
// Deployment sets (in env or through its ConfigMaps) and every flag in its
// args exists in `portalmail help <command>` of the command it runs.
func TestDeploymentsUseOnlyFlagsTheCommandsHave(t *testing.T) {
	for dir, r := range renderAll(t) {
		for name, d := range r.deployments {
			if want, ok := stages[name]; !ok || len(d.Spec.Template.Spec.Containers) != 1 || commandOf(d.Spec.Template.Spec.Containers[0]) != want {
				t.Errorf("%s: Deployment %s: want one container running %q", dir, name, stages[name])
				continue
			}
			c := d.Spec.Template.Spec.Containers[0]
			h := help(t, commandOf(c))
			for _, arg := range c.Args[1:] {
				if f, ok := strings.CutPrefix(arg, "--"); ok {
					f, _, _ = strings.Cut(f, "=")
					if !h.flags[f] {
						t.Errorf("%s: %s: `portalmail %s` has no flag --%s", dir, name, commandOf(c), f)
					}
				}
			}
			for _, k := range sortedKeys(containerEnv(t, r, c)) {
				if _, ok := h.env[k]; !ok && !envAllowed[k] {
					t.Errorf("%s: %s sets %s, which `portalmail help %s` does not list", dir, name, k, commandOf(c))
				}
			}
		}
	}
}

// addrPort is the port of a listen address such as ":9090".
func addrPort(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return int32(n)
}

// setting is the value of a flag in a container: its variable, else the
// command's default.
func setting(env map[string]envVar, h command, flag string) string {
	if v, ok := env[envName(flag)]; ok {
		return v.value
	}
	return h.defs[flag]
}

// containerPort resolves a probe's or Service's port (a name or a number)
// against the container's ports.
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// TestProbesAndPortsMatchWhatTheCommandsServe: liveness on /healthz and
// readiness on /readyz at the port of --http-addr; the container's "metrics"
// port is that port, its "webhooks" port the webhook listener's; every
// Service port reaches a container port of the pods it selects; the scrape
// annotations name the metrics port.
func TestProbesAndPortsMatchWhatTheCommandsServe(t *testing.T) {
	for dir, r := range renderAll(t) {
		for name, d := range r.deployments {
			c := d.Spec.Template.Spec.Containers[0]
			h := help(t, commandOf(c))
			env := containerEnv(t, r, c)
			httpPort := addrPort(t, setting(env, h, "http-addr"))
			probes := []struct {
				kind, path string
				p          *corev1.Probe
			}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}}
			for _, pr := range probes {
				if pr.p == nil || pr.p.HTTPGet == nil {
					t.Errorf("%s: %s: no HTTP %s probe", dir, name, pr.kind)
					continue
				}
				port, ok := containerPort(c, pr.p.HTTPGet.Port)
				if pr.p.HTTPGet.Path != pr.path || !ok || port != httpPort {
					t.Errorf("%s: %s: %s probe %s on port %s (%d), want %s on %d (--http-addr)", dir, name, pr.kind,
						pr.p.HTTPGet.Path, pr.p.HTTPGet.Port.String(), port, pr.path, httpPort)
				}
				// A readiness check is bounded by --ready-timeout; the probe must wait longer.
				if rt, err := time.ParseDuration(setting(env, h, "ready-timeout")); pr.kind == "readiness" && (err != nil || time.Duration(pr.p.TimeoutSeconds)*time.Second <= rt) {
					t.Errorf("%s: %s: readiness timeout %ds not above --ready-timeout %v", dir, name, pr.p.TimeoutSeconds, rt)
				}
			}
			if p, ok := containerPort(c, intstr.FromString("metrics")); !ok || p != httpPort {
				t.Errorf("%s: %s: container port \"metrics\" is %d, want %d (--http-addr)", dir, name, p, httpPort)
			}
			if h.flags["listen"] {
				if p, ok := containerPort(c, intstr.FromString("webhooks")); !ok || p != addrPort(t, setting(env, h, "listen")) {
					t.Errorf("%s: %s: container port \"webhooks\" is %d, want --listen's", dir, name, p)
				}
			}
			ann := d.Spec.Template.Annotations
			if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(httpPort)) || ann["prometheus.io/path"] != "/metrics" {
				t.Errorf("%s: %s: scrape annotations %v, want port %d, path /metrics", dir, name, ann, httpPort)
			}
			if !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("%s: %s: selector does not select its own pods", dir, name)
			}
		}
		for name, s := range r.services {
			d := selected(r, s.Spec.Selector)
			if len(d) != 1 {
				t.Errorf("%s: Service %s selects %d Deployments, want 1", dir, name, len(d))
				continue
			}
			c := d[0].Spec.Template.Spec.Containers[0]
			hasMetrics := false
			for _, p := range s.Spec.Ports {
				if _, ok := containerPort(c, p.TargetPort); !ok {
					t.Errorf("%s: Service %s port %s targets %s, not a port of %s", dir, name, p.Name, p.TargetPort.String(), d[0].Name)
				}
				hasMetrics = hasMetrics || p.Name == "metrics"
			}
			if !hasMetrics {
				t.Errorf("%s: Service %s has no metrics port to scrape", dir, name)
			}
		}
		for name, pdb := range r.pdbs {
			if d := selected(r, pdb.Spec.Selector.MatchLabels); len(d) != 1 || pdb.Spec.MaxUnavailable == nil {
				t.Errorf("%s: PodDisruptionBudget %s selects %d Deployments (want 1) or sets no maxUnavailable", dir, name, len(d))
			}
		}
		if r.deployments["portalmail-process"] != nil && (len(r.services) != 3 || len(r.pdbs) != 3) {
			t.Errorf("%s: %d Services and %d PodDisruptionBudgets, want one of each per Deployment", dir, len(r.services), len(r.pdbs))
		}
	}
}

func selects(selector, podLabels map[string]string) bool {
	return len(selector) > 0 && labels.SelectorFromSet(selector).Matches(labels.Set(podLabels))
}

// selected are the Deployments whose pods a selector selects.
func selected(r *rendered, selector map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, name := range sortedKeys(r.deployments) {
		if d := r.deployments[name]; selects(selector, d.Spec.Template.Labels) {
			out = append(out, d)
		}
	}
	return out
}

// secretish are names that hold a credential when given as a value.
var secretish = regexp.MustCompile(`(?i)(password|passwd|secret|api[_-]?key|signing[_-]?key|token|credential)`)

// TestNoSecretIsInlined: no Secret object and no credential as a value. A
// command's secret settings (its --*-file flags) are given as files only,
// each file inside a mounted Secret volume; no variable comes from a
// secretKeyRef; connector credentials are config-provider references.
func TestNoSecretIsInlined(t *testing.T) {
	for path, b := range yamlFiles(t) {
		for _, doc := range docs(b) {
			if regexp.MustCompile(`(?m)^kind:\s*Secret\s*$`).Match(doc) {
				t.Errorf("%s holds a Secret: create secrets outside the repository", path)
			}
		}
	}
	for dir, r := range renderAll(t) {
		for name, d := range r.deployments {
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			h := help(t, commandOf(c))
			mounts := map[string]corev1.Volume{} // mount path → Secret volume
			for _, m := range c.VolumeMounts {
				for _, v := range spec.Volumes {
					if v.Name == m.Name && v.Secret != nil {
						mounts[m.MountPath] = v
					}
				}
			}
			env := containerEnv(t, r, c)
			for _, k := range sortedKeys(env) {
				v := env[k]
				flag, known := h.env[k]
				switch {
				case v.from == "secretKeyRef":
					t.Errorf("%s: %s: %s comes from a secretKeyRef; mount the Secret and use the --*-file flag", dir, name, k)
				case known && h.secret[flag]:
					t.Errorf("%s: %s: %s is a secret given as a value (%s); use %s_FILE", dir, name, k, v.from, k)
				case strings.HasSuffix(k, "_FILE") && known:
					dir2, file := path.Split(v.value)
					vol, ok := mounts[strings.TrimSuffix(dir2, "/")]
					if !ok {
						t.Errorf("%s: %s: %s=%s is not in a mounted Secret volume", dir, name, k, v.value)
						continue
					}
					found := len(vol.Secret.Items) == 0
					for _, it := range vol.Secret.Items {
						found = found || it.Path == file
					}
					if !found || vol.Secret.Optional != nil && *vol.Secret.Optional {
						t.Errorf("%s: %s: %s=%s: the Secret %s does not provide %s (or is optional)", dir, name, k, v.value, vol.Secret.SecretName, file)
					}
				case secretish.MatchString(k) && !strings.HasSuffix(k, "_FILE"):
					t.Errorf("%s: %s: %s looks like a credential given as a value", dir, name, k)
				case regexp.MustCompile(`://[^/@\s]*:[^/@\s]+@`).MatchString(v.value):
					t.Errorf("%s: %s: %s holds a URL with a password", dir, name, k)
				}
			}
			for _, want := range []string{"redis-url"} {
				if _, ok := env[envName(want)+"_FILE"]; !ok {
					t.Errorf("%s: %s: %s_FILE not set: the Redis URL comes from the portalmail-redis Secret", dir, name, envName(want))
				}
			}
		}
		for name, k := range r.connectors {
			for key, v := range k.Spec.Config {
				s, _ := v.(string)
				if secretish.MatchString(key) && !strings.HasPrefix(s, "${") {
					t.Errorf("%s: KafkaConnector %s: %s is a value; use ${secrets:<namespace>/<secret>:<key>}", dir, name, key)
				}
			}
		}
	}
}

// TestResourcesAndGracePeriods: every container has CPU and memory requests
// and limits (requests within limits), and each stage's
// terminationGracePeriodSeconds outlasts what it finishes on SIGTERM.
func TestResourcesAndGracePeriods(t *testing.T) {
	for dir, r := range renderAll(t) {
		for name, d := range r.deployments {
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[res]
				lim, okLim := c.Resources.Limits[res]
				if !okReq || !okLim || req.Cmp(lim) > 0 {
					t.Errorf("%s: %s: %s request %v and limit %v: want both, request ≤ limit", dir, name, res, req.String(), lim.String())
				}
			}
			if spec.TerminationGracePeriodSeconds == nil {
				t.Errorf("%s: %s: no terminationGracePeriodSeconds", dir, name)
				continue
			}
			grace := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
			h := help(t, commandOf(c))
			env := containerEnv(t, r, c)
			var need time.Duration
			switch commandOf(c) {
			case "process":
				// The batch in hand ends within the producer's transaction
				// timeout (60 s, processor/stream/process.go).
				need = 60 * time.Second
			case "send":
				// A Mailgun request in flight is not cancelled on shutdown.
				mt, err := time.ParseDuration(setting(env, h, "mailgun-timeout"))
				if err != nil {
					t.Fatal(err)
				}
				need = mt
			case "webhooks":
				// preStop, then the HTTP server's 10 s drain.
				need = 10 * time.Second
				if ps := c.Lifecycle; ps == nil || ps.PreStop == nil || ps.PreStop.Sleep == nil {
					t.Errorf("%s: %s: no preStop sleep to leave the Service before draining", dir, name)
				} else {
					need += time.Duration(ps.PreStop.Sleep.Seconds) * time.Second
				}
			}
			// 5 s more: the ops HTTP server's shutdown, leaving the group.
			if grace < need+5*time.Second {
				t.Errorf("%s: %s: terminationGracePeriodSeconds %v, want at least %v", dir, name, grace, need+5*time.Second)
			}
		}
	}
}

// partitions is the partition count of the topics the stages consume, as the
// repository creates them (.env.example's TOPIC_PARTITIONS for
// docker-compose.yml) and the connectors have Debezium create them.
func partitions(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TOPIC_PARTITIONS=(\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal(".env.example has no TOPIC_PARTITIONS")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// kafkaScalerKeys are the trigger metadata keys of KEDA's Kafka scaler
// (pkg/scalers/kafka_scaler.go, kafkaMetadata); <key>FromEnv reads a key
// from the scale target's environment.
var kafkaScalerKeys = []string{"bootstrapServers", "consumerGroup", "topic", "partitionLimitation", "lagThreshold",
	"activationLagThreshold", "offsetResetPolicy", "allowIdleConsumers", "excludePersistentLag",
	"scaleToZeroOnInvalidOffset", "limitToPartitionsWithLag", "ensureEvenDistributionOfPartitions", "version",
	"tls", "sasl", "unsafeSsl"}

// TestAutoscalers: one ScaledObject per consumer stage on KEDA's Kafka
// scaler, reading brokers and group from the stage's own environment, with
// a lagThreshold and bounds no higher than the partition count; the plain
// HPA overlay has the same bounds and targets; the autoscaled Deployments
// leave replicas to the autoscaler.
func TestAutoscalers(t *testing.T) {
	rs := renderAll(t)
	n := partitions(t)
	keda, hpa := rs["kubernetes/overlays/keda"], rs["kubernetes/overlays/hpa"]
	if len(keda.scaledObjs) != 2 || len(hpa.hpas) != 2 {
		t.Fatalf("%d ScaledObjects and %d HPAs, want 2 of each (process, send)", len(keda.scaledObjs), len(hpa.hpas))
	}
	for _, stage := range []string{"portalmail-process", "portalmail-send"} {
		so, ok := keda.scaledObjs[stage]
		if !ok || so.Spec.ScaleTargetRef == nil || so.Spec.ScaleTargetRef.Name != stage {
			t.Errorf("no ScaledObject targeting %s", stage)
			continue
		}
		d := keda.deployments[stage]
		env := containerEnv(t, keda, d.Spec.Template.Spec.Containers[0])
		if d.Spec.Replicas != nil || hpa.deployments[stage].Spec.Replicas != nil {
			t.Errorf("%s: replicas set under an autoscaler", stage)
		}
		if so.Spec.MinReplicaCount == nil || *so.Spec.MinReplicaCount < 1 || so.Spec.MaxReplicaCount == nil ||
			*so.Spec.MaxReplicaCount > int32(n) || *so.Spec.MaxReplicaCount < *so.Spec.MinReplicaCount {
			t.Errorf("%s: replicas %s..%s, want 1 ≤ min ≤ max ≤ %d partitions", stage, deref(so.Spec.MinReplicaCount), deref(so.Spec.MaxReplicaCount), n)
			continue
		}
		if len(so.Spec.Triggers) != 1 || so.Spec.Triggers[0].Type != "kafka" {
			t.Errorf("%s: want one kafka trigger, got %+v", stage, so.Spec.Triggers)
			continue
		}
		md := so.Spec.Triggers[0].Metadata
		for k, v := range md {
			key, fromEnv := strings.CutSuffix(k, "FromEnv")
			if !slices.Contains(kafkaScalerKeys, key) {
				t.Errorf("%s: trigger metadata %s is not a Kafka scaler key", stage, k)
			}
			if _, ok := env[v]; fromEnv && !ok {
				t.Errorf("%s: %s=%s, but the Deployment does not set %s", stage, k, v, v)
			}
		}
		if md["bootstrapServersFromEnv"] != "PORTALMAIL_BROKERS" || md["consumerGroupFromEnv"] != "PORTALMAIL_GROUP" {
			t.Errorf("%s: brokers and group must come from the stage's PORTALMAIL_BROKERS and PORTALMAIL_GROUP: %v", stage, md)
		}
		lag, err := strconv.Atoi(md["lagThreshold"])
		if err != nil || lag <= 0 || md["allowIdleConsumers"] != "false" || md["offsetResetPolicy"] != "earliest" {
			t.Errorf("%s: lagThreshold %q, allowIdleConsumers %q, offsetResetPolicy %q", stage, md["lagThreshold"], md["allowIdleConsumers"], md["offsetResetPolicy"])
		}
		h := hpa.hpas[stage]
		if h == nil || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != *so.Spec.MinReplicaCount || h.Spec.MaxReplicas != *so.Spec.MaxReplicaCount {
			t.Errorf("%s: the HPA's bounds differ from the ScaledObject's", stage)
			continue
		}
		foundLag := false
		for _, m := range h.Spec.Metrics {
			if m.External != nil && m.External.Metric.Name == "portalmail_consumer_lag" {
				foundLag = m.External.Target.AverageValue != nil && m.External.Target.AverageValue.Value() == int64(lag) &&
					m.External.Metric.Selector != nil && m.External.Metric.Selector.MatchLabels["group"] == env["PORTALMAIL_GROUP"].value
			}
		}
		if !foundLag {
			t.Errorf("%s: the HPA has no portalmail_consumer_lag target of %d for group %s", stage, lag, env["PORTALMAIL_GROUP"].value)
		}
	}
	if p := rs["kubernetes/base"].deployments["portalmail-process"].Spec.Replicas; p == nil || *p < 2 {
		t.Error("base: process runs fewer than 2 replicas")
	}
}

// TestConnectorsCoverTheSourceContract: the two Debezium connectors capture
// exactly the tables portalmail reads, under the default topic prefixes, and
// create topics with the partition count the autoscalers assume.
func TestConnectorsCoverTheSourceContract(t *testing.T) {
	r := renderAll(t)["kubernetes/overlays/strimzi-debezium"]
	var want, got []string
	for table := range cdc.Contract {
		want = append(want, table)
	}
	for _, prefix := range []string{"portal", "service"} {
		k, ok := r.connectors[prefix]
		if !ok {
			t.Fatalf("no KafkaConnector %q", prefix)
		}
		cfg := k.Spec.Config
		if cfg["topic.prefix"] != prefix || k.Spec.Class != "io.debezium.connector.postgresql.PostgresConnector" || k.Labels["strimzi.io/cluster"] == "" {
			t.Errorf("connector %s: topic.prefix %v, class %s, cluster label %q", prefix, cfg["topic.prefix"], k.Spec.Class, k.Labels["strimzi.io/cluster"])
		}
		if cfg["tombstones.on.delete"] != true {
			t.Errorf("connector %s: tombstones.on.delete must be true (a delete is op=d and a tombstone)", prefix)
		}
		if p, _ := cfg["topic.creation.default.partitions"].(float64); int(p) != partitions(t) {
			t.Errorf("connector %s: topic.creation.default.partitions %v, want %d", prefix, cfg["topic.creation.default.partitions"], partitions(t))
		}
		tables, _ := cfg["table.include.list"].(string)
		for _, tbl := range strings.Split(tables, ",") {
			got = append(got, prefix+"."+strings.TrimSpace(tbl))
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("connectors capture %v,\nthe source contract is %v", got, want)
	}
}

func deref(p *int32) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(int(*p))
}
