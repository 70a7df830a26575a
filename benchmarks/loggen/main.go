// Command loggen writes realistic log lines for demos, tests and
// benchmarks: service JSON lines or nginx access lines in the default
// Sluice log_format (combined plus request time, upstream time and
// X-Forwarded-For). Output is deterministic for a given seed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"
)

func main() {
	kind := flag.String("kind", "service", "service or nginx")
	n := flag.Int("n", 1000, "number of lines")
	seed := flag.Uint64("seed", 1, "random seed")
	service := flag.String("service", "checkout", "service name written in service lines")
	start := flag.String("start", "2026-11-25T10:00:00Z", "time of the first line (RFC 3339)")
	idPrefix := flag.String("id-prefix", "", "prefix of the unique id in each line")
	flag.Parse()
	t0, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loggen: -start:", err)
		os.Exit(2)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	g := gen{r: rand.New(rand.NewPCG(*seed, 42)), t: t0, service: *service, prefix: *idPrefix}
	for i := range *n {
		switch *kind {
		case "service":
			g.service1(w, i)
		case "nginx":
			g.nginx1(w, i)
		default:
			fmt.Fprintln(os.Stderr, "loggen: -kind must be service or nginx")
			os.Exit(2)
		}
	}
}

type gen struct {
	r       *rand.Rand
	t       time.Time
	service string
	prefix  string
}

var (
	levels   = []string{"info", "info", "info", "info", "debug", "warn", "error"}
	messages = []string{"order placed", "payment authorised", "cart updated", "user signed in", "cache miss", "upstream timeout", "inventory reserved"}
	methods  = []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}
	paths    = []string{"/api/v1/orders", "/api/v1/cart", "/api/v1/users/me", "/health", "/static/app.js", "/api/v1/search?q=shoes&page=2"}
	statuses = []int{200, 200, 200, 200, 201, 204, 301, 304, 400, 404, 500, 502}
	agents   = []string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
		"curl/8.5.0",
	}
	// Public addresses from several continents, and a private one.
	clients = []string{"81.2.69.142", "216.160.83.56", "89.160.20.112", "175.16.199.3", "2.125.160.216", "67.43.156.1", "10.1.2.3"}
)

func (g *gen) tick() time.Time {
	g.t = g.t.Add(time.Duration(g.r.IntN(50)) * time.Millisecond)
	return g.t
}

func (g *gen) service1(w *bufio.Writer, i int) {
	fmt.Fprintf(w, `{"@timestamp":"%s","level":"%s","service":"%s","msg":"%s","id":"%s%d","order_id":"A-%07d","user_id":"u-%06d","http_path":"%s","duration_ms":%.1f,"trace_id":"%016x%016x","span_id":"%016x"}`+"\n",
		g.tick().Format("2006-01-02T15:04:05.000Z07:00"), levels[g.r.IntN(len(levels))], g.service,
		messages[g.r.IntN(len(messages))], g.prefix, i, g.r.IntN(10_000_000), g.r.IntN(1_000_000), paths[g.r.IntN(len(paths))],
		g.r.Float64()*250, g.r.Uint64(), g.r.Uint64(), g.r.Uint64())
}

func (g *gen) nginx1(w *bufio.Writer, i int) {
	client := clients[g.r.IntN(len(clients))]
	xff := "-"
	if g.r.IntN(3) == 0 {
		xff = client + ", 10.0.0.7"
		client = "10.0.0.7"
	}
	rt := g.r.Float64() * 0.5
	fmt.Fprintf(w, `%s - - [%s] "%s %s?id=%s%d HTTP/1.1" %d %d "-" "%s" %.3f %.3f "%s"`+"\n",
		client, g.tick().Format("02/Jan/2006:15:04:05 -0700"), methods[g.r.IntN(len(methods))],
		paths[g.r.IntN(len(paths))], g.prefix, i, statuses[g.r.IntN(len(statuses))], g.r.IntN(50000),
		agents[g.r.IntN(len(agents))], rt, rt*0.9, xff)
}
