package telemetry

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfoLabelsVersionGoAndRevision(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BuildInfo("v1.2.3"))
	want := `# HELP sluice_build_info 1, labelled with the version, Go version and VCS revision this process was built from.
# TYPE sluice_build_info gauge
sluice_build_info{goversion="` + runtime.Version() + `",revision="unknown",version="v1.2.3"} 1
`
	// Test binaries carry no VCS stamp: the revision reads "unknown".
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sluice_build_info"); err != nil {
		t.Fatal(err)
	}
}
