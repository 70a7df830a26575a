// Command apidemo writes the logs of `make demo`'s API: a real nginx (the
// README's configuration) in front of two services that log JSON lines
// with the request id, and requests through it, some slow, some failing,
// some retried past a server that refuses connections. It prints what the
// client measured per route, to hold against what Elasticsearch says.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/sluicelog/sluice/internal/apidemo"
	"github.com/sluicelog/sluice/internal/nginxproc"
)

func main() {
	logs := flag.String("logs", "", "directory of the logs: services/<environment>/<customer>/<service>/app.log and nginx/access.log")
	scale := flag.Int("scale", 5, "requests: 90 times this")
	flag.Parse()
	if *logs == "" {
		fmt.Fprintln(os.Stderr, "apidemo: -logs is required")
		os.Exit(2)
	}
	if err := run(*logs, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "apidemo:", err)
		os.Exit(1)
	}
}

func run(logs string, scale int) error {
	orders, err := apidemo.StartService(filepath.Join(logs, "services/prod/acme/orders/app.log"), apidemo.Orders)
	if err != nil {
		return err
	}
	defer orders.Close()
	users, err := apidemo.StartService(filepath.Join(logs, "services/prod/acme/users/app.log"), apidemo.Users)
	if err != nil {
		return err
	}
	defer users.Close()
	dead, err := nginxproc.FreePort()
	if err != nil {
		return err
	}
	port, err := nginxproc.FreePort()
	if err != nil {
		return err
	}
	access := filepath.Join(logs, "nginx/access.log")
	if err := os.MkdirAll(filepath.Dir(access), 0o755); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "sluice-apidemo-nginx")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	block := apidemo.HTTPBlock(access, port,
		fmt.Sprintf("server 127.0.0.1:%d max_fails=0; server %s max_fails=0;", dead, orders.Addr),
		"server "+users.Addr+";")
	nginx, err := nginxproc.Start(dir, block, port)
	if err != nil {
		return err
	}
	defer nginx.Stop()
	calls := apidemo.Calls(scale)
	start := time.Now()
	if err := apidemo.Run(fmt.Sprintf("http://127.0.0.1:%d", port), calls, 8); err != nil {
		return err
	}
	fmt.Printf("   %d requests through nginx in %v; the client measured:\n", len(calls), time.Since(start).Round(time.Millisecond))
	type stats struct {
		n, errors int
		took      []time.Duration
	}
	routes := map[string]*stats{}
	for _, c := range calls {
		s := routes[c.Route]
		if s == nil {
			s = &stats{}
			routes[c.Route] = s
		}
		s.n++
		if c.Status >= 500 {
			s.errors++
		}
		s.took = append(s.took, c.Took)
	}
	for _, route := range slices.Sorted(maps.Keys(routes)) {
		s := routes[route]
		slices.Sort(s.took)
		p95 := s.took[max((95*len(s.took)+99)/100-1, 0)]
		fmt.Printf("   %-28s %5d requests %4d errors  p95 %7.1f ms\n", route, s.n, s.errors, float64(p95)/1e6)
	}
	return nil
}
