package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// k8sObject is the part of a rendered manifest the checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []container `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type container struct {
	Name           string   `yaml:"name"`
	Image          string   `yaml:"image"`
	Args           []string `yaml:"args"`
	LivenessProbe  *probe   `yaml:"livenessProbe"`
	ReadinessProbe *probe   `yaml:"readinessProbe"`
	Ports          []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// TestHelmChartParses: Chart.yaml and values.yaml are YAML with the fields
// helm needs, and the templates probe /healthz and /readyz (the rendering
// itself is TestHelmChartRenders, with helm).
func TestHelmChartParses(t *testing.T) {
	var chart struct {
		APIVersion string `yaml:"apiVersion"`
		Name       string `yaml:"name"`
		Version    string `yaml:"version"`
	}
	readYAML(t, "helm/shoal/Chart.yaml", &chart)
	if chart.APIVersion != "v2" || chart.Name != "shoal" || chart.Version == "" {
		t.Fatalf("Chart.yaml: %+v", chart)
	}
	var values map[string]any
	readYAML(t, "helm/shoal/values.yaml", &values)
	for _, k := range []string{"image", "tracker", "redis", "peer", "probes"} {
		if _, ok := values[k]; !ok {
			t.Errorf("values.yaml lacks %q", k)
		}
	}
	helpers, err := os.ReadFile("helm/shoal/templates/_helpers.tpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"path: /healthz", "path: /readyz"} {
		if !bytes.Contains(helpers, []byte(want)) {
			t.Errorf("_helpers.tpl lacks %q", want)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestHelmChartRenders: helm lint passes, and helm template renders a
// tracker Deployment, a Redis, a peer DaemonSet and their Services, each
// Shoal container with the chart's image and probes on /healthz and
// /readyz; without peer.origin the render fails and says so. helm is
// built from the Go module proxy by .ci/run (Debian has no helm package);
// SHOAL_HELM may name the binary.
func TestHelmChartRenders(t *testing.T) {
	helm := os.Getenv("SHOAL_HELM")
	if helm == "" {
		helm = tool(t, "helm", "GOBIN=DIR go install helm.sh/helm/v3/cmd/helm@v3.22.0 and put DIR on PATH")
	}
	set := []string{"--set", "peer.origin=https://origin.example.com", "--set", "peer.trust=ed25519:test", "--set", "image.tag=v1.0.0"}
	run(t, helm, append([]string{"lint", "--strict", "helm/shoal"}, set...)...)
	out := run(t, helm, append([]string{"template", "demo", "helm/shoal"}, set...)...)

	dec := yaml.NewDecoder(bytes.NewReader(out))
	kinds := map[string]k8sObject{}
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered chart: %v\n%s", err, out)
		}
		if o.Kind == "" {
			continue
		}
		kinds[o.Kind+"/"+o.Metadata.Name] = o
	}
	for _, want := range []string{"Deployment/demo-shoal-tracker", "Service/demo-shoal-tracker", "Deployment/demo-shoal-redis",
		"Service/demo-shoal-redis", "DaemonSet/demo-shoal-peer", "Service/demo-shoal-gateway"} {
		if _, ok := kinds[want]; !ok {
			t.Errorf("rendered chart lacks %s; has %v", want, keys(kinds))
		}
	}
	for _, name := range []string{"Deployment/demo-shoal-tracker", "DaemonSet/demo-shoal-peer"} {
		cs := kinds[name].Spec.Template.Spec.Containers
		if len(cs) != 1 {
			t.Fatalf("%s: %d containers", name, len(cs))
		}
		c := cs[0]
		if c.Image != "shoal:v1.0.0" {
			t.Errorf("%s: image %q, want shoal:v1.0.0", name, c.Image)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness probe %+v, want GET /healthz", name, c.LivenessProbe)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness probe %+v, want GET /readyz", name, c.ReadinessProbe)
		}
		if len(c.Args) == 0 || (c.Args[0] != "tracker" && c.Args[0] != "peer") {
			t.Errorf("%s: args %v, want the subcommand first", name, c.Args)
		}
	}

	// A required value missing: the render fails and names it.
	cmd := exec.Command(helm, "template", "demo", "helm/shoal", "--set", "peer.trust=ed25519:test")
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "peer.origin is required") {
		t.Fatalf("render without peer.origin: %v\n%s", err, b)
	}
}

func keys(m map[string]k8sObject) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
