package deploy

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// The alerting rules live in deploy/prometheus/sluice-rules.yaml; the
// Prometheus Operator overlay carries them as a PrometheusRule generated
// from that file (go test ./deploy -run TestPrometheusRule -args -update).
const (
	rulesDir           = "prometheus"
	rulesFile          = "sluice-rules.yaml"
	rulesTestFile      = "sluice-rules_test.yaml"
	prometheusRulePath = "kubernetes/overlays/prometheus-operator/prometheusrule.yaml"
)

var update = flag.Bool("update", false, "write the PrometheusRule from "+rulesFile)

const prometheusRuleHeader = `# Generated from deploy/prometheus/sluice-rules.yaml by
# go test ./deploy -run TestPrometheusRule -args -update; edit that file instead.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: sluice
  labels:
    app.kubernetes.io/name: sluice
    release: prometheus
spec:
`

// prometheusRule returns the PrometheusRule whose spec is the rules file:
// its groups indented under spec, comments and all.
func prometheusRule(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(prometheusRuleHeader)
	in := false
	for _, line := range strings.SplitAfter(string(rules), "\n") {
		if strings.HasPrefix(line, "groups:") {
			in = true
		}
		if !in || line == "" {
			continue
		}
		if strings.TrimSpace(line) != "" {
			b.WriteString("  ")
		}
		b.WriteString(line)
	}
	return b.Bytes()
}

func TestPrometheusRuleMatchesRulesFile(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(rulesDir, rulesFile))
	if err != nil {
		t.Fatal(err)
	}
	want := prometheusRule(rules)
	if *update {
		if err := os.WriteFile(prometheusRulePath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(prometheusRulePath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not generated from %s; run go test ./deploy -run TestPrometheusRule -args -update", prometheusRulePath, rulesFile)
	}
	// The same groups, read back as YAML.
	var plain, operator struct {
		Groups []any `yaml:"groups"`
		Spec   struct {
			Groups []any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(rules, &plain); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(got, &operator); err != nil {
		t.Fatal(err)
	}
	if len(plain.Groups) == 0 || !equalYAML(plain.Groups, operator.Spec.Groups) {
		t.Fatalf("the PrometheusRule's spec.groups differ from %s's groups", rulesFile)
	}
}

func equalYAML(a, b any) bool {
	x, err1 := yaml.Marshal(a)
	y, err2 := yaml.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

type ruleGroups struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert string `yaml:"alert"`
			Expr  string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTests struct {
	Tests []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// readRules reads the rules file and its promtool tests.
func readRules(t *testing.T) (ruleGroups, ruleTests) {
	t.Helper()
	var rules ruleGroups
	readYAML(t, filepath.Join(rulesDir, rulesFile), &rules)
	var tests ruleTests
	readYAML(t, filepath.Join(rulesDir, rulesTestFile), &tests)
	return rules, tests
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

var metricName = regexp.MustCompile(`\bsluice_[a-z0-9_]+`)

// TestRulesUseMetricsThatExist: an alert on a metric that was renamed
// never fires and never says so. Every sluice_* name in the rules, and in
// the series their tests feed them, must be a metric Sluice's code defines.
func TestRulesUseMetricsThatExist(t *testing.T) {
	defined := definedMetrics(t)
	if len(defined) < 30 {
		t.Fatalf("found only %d metric names in the Go sources: %v", len(defined), defined)
	}
	rules, tests := readRules(t)
	used := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			for _, n := range metricName.FindAllString(r.Expr, -1) {
				used[n] = "alert " + r.Alert
			}
		}
	}
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			for _, n := range metricName.FindAllString(s.Series, -1) {
				used[n] = rulesTestFile
			}
		}
	}
	if len(used) == 0 {
		t.Fatal("no sluice_* metric in the rules")
	}
	for n, where := range used {
		base := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(n, suffix); ok && defined[b] {
				base = b
			}
		}
		if !defined[base] {
			t.Errorf("%s (%s) is not a metric defined in the Go sources", n, where)
		}
	}
}

// TestEveryAlertIsTested: each alert fires in at least one test of
// sluice-rules_test.yaml.
func TestEveryAlertIsTested(t *testing.T) {
	rules, tests := readRules(t)
	fired := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired[a.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" && !fired[r.Alert] {
				t.Errorf("alert %s fires in no test of %s", r.Alert, rulesTestFile)
			}
		}
	}
}

// definedMetrics returns the metric names in the repository's Go sources
// (not tests): the string literals "sluice_...", and the names
// telemetry.Progress builds as "sluice_" + component + "_suffix" for each
// component its Register calls name.
func definedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	literal := regexp.MustCompile(`"(sluice_[a-z0-9_]+)"`)
	built := regexp.MustCompile(`"sluice_" \+ component \+ "(_[a-z0-9_]+)"`)
	component := regexp.MustCompile(`\.Register\([^,()]+, "([a-z]+)"\)`)
	names := map[string]bool{}
	var suffixes, components []string
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range literal.FindAllSubmatch(src, -1) {
			names[string(m[1])] = true
		}
		for _, m := range built.FindAllSubmatch(src, -1) {
			suffixes = append(suffixes, string(m[1]))
		}
		for _, m := range component.FindAllSubmatch(src, -1) {
			components = append(components, string(m[1]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range components {
		for _, s := range suffixes {
			names["sluice_"+c+s] = true
		}
	}
	return names
}

// TestAlertRules runs Prometheus' own promtool over the rules: check rules
// (syntax, templates) and test rules (sluice-rules_test.yaml). promtool
// comes from the tools module in deploy/prometheus (its go.mod keeps
// Prometheus' dependencies out of Sluice's); `go tool` builds it once
// (about 5 minutes on 2 cores) and then takes it from Go's build cache.
func TestAlertRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds promtool")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not in PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"check", "rules", rulesFile},
		{"test", "rules", rulesTestFile},
	} {
		cmd := exec.CommandContext(ctx, goBin, append([]string{"tool", "promtool"}, args...)...)
		cmd.Dir = rulesDir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s (%s):\n%s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), out)
	}
}

// alertNames lists the alerts of the rules file, for the README check.
func alertNames(t *testing.T) []string {
	rules, _ := readRules(t)
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// TestAlertsDocumented: deploy/README.md lists every alert.
func TestAlertsDocumented(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range alertNames(t) {
		if !bytes.Contains(doc, []byte("`"+n+"`")) {
			t.Errorf("deploy/README.md does not describe alert %s", n)
		}
	}
}
