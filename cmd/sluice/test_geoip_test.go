package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// TestSluiceTestWithGeoIP configures a GeoIP City database: `sluice test`
// enriches documents with it, before the pipeline, so that a pipeline can
// use the source.geo.* fields.
func TestSluiceTestWithGeoIP(t *testing.T) {
	dir := t.TempDir()
	city := filepath.Join(dir, "city.mmdb")
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "GeoIP2-City", IPVersion: 6, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	_, network, _ := net.ParseCIDR("81.2.69.0/24")
	if err := tree.Insert(network, mmdbtype.Map{
		"country":   mmdbtype.Map{"iso_code": mmdbtype.String("GB"), "names": mmdbtype.Map{"en": mmdbtype.String("United Kingdom")}},
		"continent": mmdbtype.Map{"code": mmdbtype.String("EU"), "names": mmdbtype.Map{"en": mmdbtype.String("Europe")}},
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(city)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cfg := filepath.Join(dir, "aggregator.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
elasticsearch: {}
geoip:
  city: %s
  watch: false
pipelines:
  nginx:
    - name: tag-country
      set: {field: labels.country, value: "{source.geo.country_iso_code}"}
    - name: drop-internal
      drop: {if: {not: {exists: source.geo.country_iso_code}}}
`, city))
	cases := filepath.Join(dir, "pipeline-tests")
	writeFile(t, filepath.Join(cases, "geo.nginx.log"),
		`81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 2 "-" "curl/8.5.0" 0.001 0.001 "-"
10.1.2.3 - - [25/Nov/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 2 "-" "curl/8.5.0" 0.001 0.001 "-"
`)
	if code, out, errOut := runSluice("test", "-c", cfg, "-update"); code != 0 {
		t.Fatalf("-update: exit code %d; %s\n%s", code, errOut, out)
	}
	data, err := os.ReadFile(filepath.Join(cases, "geo.nginx.expected.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"source.geo.country_iso_code":"GB"`) ||
		!strings.Contains(lines[0], `"labels.country":"GB"`) || lines[1] != `{"_dropped":"drop-internal"}` {
		t.Fatalf("expected documents:\n%s\nwant the first enriched and tagged GB, the second dropped", data)
	}
	if code, out, errOut := runSluice("test", "-c", cfg); code != 0 || !strings.Contains(out, "PASS: 1 cases, 2 lines") {
		t.Fatalf("exit code %d; %s\n%s", code, errOut, out)
	}
}
