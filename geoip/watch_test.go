package geoip

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicelog/sluice/parser"
)

var londonAddr = netip.MustParseAddr("81.2.69.142")

// cityName returns the city the Enricher currently gives for londonAddr.
func cityName(e *Enricher) string {
	r, _ := e.Lookup(londonAddr)
	return r.CityName
}

// waitForCity waits up to 5s for the Enricher to give want.
func waitForCity(t *testing.T, e *Enricher, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for cityName(e) != want {
		if time.Now().After(deadline) {
			t.Fatalf("city = %q, still not %q after 5s", cityName(e), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// run runs e.Run until the test ends.
func run(t *testing.T, e *Enricher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func TestHotReload(t *testing.T) {
	city, asn := testDBs(t)
	e, reg := open(t, Config{City: city, ASN: asn})
	run(t, e)
	if got := cityName(e); got != "London" {
		t.Fatalf("city = %q", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP sluice_geoip_database_build_timestamp_seconds Build time of the GeoIP database in use, from its metadata, by database (city, asn).
# TYPE sluice_geoip_database_build_timestamp_seconds gauge
sluice_geoip_database_build_timestamp_seconds{database="asn"} %d
sluice_geoip_database_build_timestamp_seconds{database="city"} %d
`, built1, built1)), "sluice_geoip_database_build_timestamp_seconds"); err != nil {
		t.Error(err)
	}

	// A newer database with other data replaces the file by rename; the
	// cached London must go too.
	writeCityDB(t, city, "Manchester", built2)
	waitForCity(t, e, "Manchester")

	if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP sluice_geoip_database_build_timestamp_seconds Build time of the GeoIP database in use, from its metadata, by database (city, asn).
# TYPE sluice_geoip_database_build_timestamp_seconds gauge
sluice_geoip_database_build_timestamp_seconds{database="asn"} %d
sluice_geoip_database_build_timestamp_seconds{database="city"} %d
# HELP sluice_geoip_reloads_total GeoIP database reloads after a file change, by result (ok, error).
# TYPE sluice_geoip_reloads_total counter
sluice_geoip_reloads_total{result="error"} 0
sluice_geoip_reloads_total{result="ok"} 1
`, built1, built2)), "sluice_geoip_database_build_timestamp_seconds", "sluice_geoip_reloads_total"); err != nil {
		t.Error(err)
	}
	if r, _ := e.Lookup(londonAddr); r.ASNumber != 20712 {
		t.Errorf("ASN after the City reload = %d, want the unchanged ASN database's", r.ASNumber)
	}
}

func TestHotReloadKubernetesSymlinks(t *testing.T) {
	// The layout of a mounted ConfigMap or Secret: the file is a symlink
	// through ..data, which is swapped to a new directory by rename.
	dir := t.TempDir()
	writeVersion := func(version, city string, built int64) {
		vdir := filepath.Join(dir, "..v"+version)
		if err := os.Mkdir(vdir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeCityDB(t, filepath.Join(vdir, "city.mmdb"), city, built)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(vdir), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("1", "London", built1)
	path := filepath.Join(dir, "city.mmdb")
	if err := os.Symlink(filepath.Join("..data", "city.mmdb"), path); err != nil {
		t.Fatal(err)
	}
	e, _ := open(t, Config{City: path})
	run(t, e)
	if got := cityName(e); got != "London" {
		t.Fatalf("city = %q", got)
	}
	writeVersion("2", "Leeds", built2)
	waitForCity(t, e, "Leeds")
}

func TestReloadChanged(t *testing.T) {
	city, _ := testDBs(t)
	e, _ := open(t, Config{City: city})
	st := newReloadState()
	reloads := func() (ok, failed float64) {
		return testutil.ToFloat64(e.m.reloadOK), testutil.ToFloat64(e.m.reloadErrors)
	}
	steps := []struct {
		name         string
		change       func()
		city         string
		ok, failed   float64
		buildTimeNow float64
	}{
		{"unchanged", func() {}, "London", 0, 0, built1},
		{"rewritten in place", func() {
			tmp := filepath.Join(t.TempDir(), "new.mmdb")
			writeCityDB(t, tmp, "Bristol", built2)
			data, err := os.ReadFile(tmp)
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, city, string(data))
		}, "Bristol", 1, 0, built2},
		{"unchanged again", func() {}, "Bristol", 1, 0, built2},
		{"replaced by a broken file", func() { writeFile(t, city, "garbage") }, "Bristol", 1, 1, built2},
		{"broken file not retried", func() {}, "Bristol", 1, 1, built2},
		{"gone", func() {
			if err := os.Remove(city); err != nil {
				t.Fatal(err)
			}
		}, "Bristol", 1, 1, built2},
		{"fixed", func() { writeCityDB(t, city, "Cardiff", built1+5) }, "Cardiff", 2, 1, built1 + 5},
	}
	for _, s := range steps {
		s.change()
		e.reloadChanged(st)
		ok, failed := reloads()
		if got := cityName(e); got != s.city || ok != s.ok || failed != s.failed {
			t.Errorf("%s: city %q, reloads ok %v error %v; want %q, %v, %v", s.name, got, ok, failed, s.city, s.ok, s.failed)
		}
		if got := testutil.ToFloat64(e.m.buildTime.WithLabelValues(cityDB)); got != s.buildTimeNow {
			t.Errorf("%s: build time %v, want %v", s.name, got, s.buildTimeNow)
		}
	}
}

func TestRunReturns(t *testing.T) {
	city, _ := testDBs(t)
	returns := func(name string, e *Enricher, ctx context.Context, stop func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			e.Run(ctx)
			close(done)
		}()
		stop()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: Run did not return", name)
		}
	}
	e, _ := open(t, Config{City: city})
	ctx, cancel := context.WithCancel(context.Background())
	returns("cancel", e, ctx, cancel)

	e, _ = open(t, Config{City: city})
	returns("close", e, context.Background(), func() { e.Close() })

	off := false
	e, _ = open(t, Config{City: city, Watch: &off})
	returns("watch off", e, context.Background(), func() {})
}

// TestReloadUnderLoad swaps databases while lookups go on, for the race
// detector and to show that no lookup sees a half-swapped state.
func TestReloadUnderLoad(t *testing.T) {
	city, asn := testDBs(t)
	e, _ := open(t, Config{City: city, ASN: asn, CacheSize: 64})
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				addr := netip.AddrFrom4([4]byte{81, 2, 69, byte(i)})
				r, ok := e.Lookup(addr)
				if !ok || (r.CityName != "London" && r.CityName != "Manchester") || r.ASNumber != 20712 {
					t.Errorf("worker %d: Lookup(%s) = %+v, %v", w, addr, r, ok)
					return
				}
				doc := parser.DocOf(map[string]any{"source.ip": addr.String()})
				if !e.Enrich(doc) {
					t.Errorf("worker %d: Enrich(%s) added nothing", w, addr)
					return
				}
			}
		})
	}
	st := newReloadState()
	for i := range 20 {
		writeCityDB(t, city, []string{"London", "Manchester"}[i%2], built1+int64(i)+1)
		e.reloadChanged(st)
	}
	stop.Store(true)
	wg.Wait()
	if got := testutil.ToFloat64(e.m.reloadOK); got != 20 {
		t.Errorf("reloads = %v, want 20", got)
	}
}

func TestConcerns(t *testing.T) {
	e := &Enricher{cfg: Config{City: "/data/geo/City.mmdb", ASN: "/data/asn/ASN.mmdb"}}
	tests := []struct {
		name string
		want bool
	}{
		{"/data/geo/City.mmdb", true},
		{"/data/asn/ASN.mmdb", true},
		{"/data/geo/..data", true},
		{"/data/geo/..2026_01_01_00_00_00.123", true},
		{"/data/geo/City.mmdb.tmp", false},
		{"/data/geo/Country.mmdb", false},
		{"/data/asn/City.mmdb", false},
	}
	for _, tt := range tests {
		if got := e.concerns(tt.name); got != tt.want {
			t.Errorf("concerns(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDebounce(t *testing.T) {
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	start := time.Now()
	first := debounce(settle, time.Time{})
	if first.Before(start) {
		t.Errorf("first event at %v, before %v", first, start)
	}
	// Events for longer than maxSettle: the check is due at once.
	long := time.Now().Add(-maxSettle - time.Second)
	if got := debounce(settle, long); !got.Equal(long) {
		t.Errorf("debounce kept %v, want the first event %v", got, long)
	}
	select {
	case <-settle.C:
	case <-time.After(settleDelay / 2):
		t.Error("check not due at once after maxSettle")
	}
}
