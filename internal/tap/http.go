package tap

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// maxTaps bounds the taps open at once on a process: each costs a copy of
// every event it takes.
const maxTaps = 8

// Path is where a process serves its taps.
const Path = "/tap"

// ServeHTTP streams the events of the tap the query describes as NDJSON,
// until the client goes or the limit is reached. Only clients on the
// loopback interface are served: the events are the logs themselves, and
// http.listen is often opened to the cluster for probes and scrapes; use
// `kubectl exec` or `kubectl port-forward`, which connect from inside the
// pod. A proxy on the same host connects from a loopback address too, on
// behalf of anyone: a request that came through one (see local) is
// refused.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "the tap is read-only: use GET", http.StatusMethodNotAllowed)
		return
	}
	if !loopback(r.RemoteAddr) || !local(r) {
		http.Error(w, "the tap serves only clients on this host (run sluice tap in the pod, or through kubectl port-forward)", http.StatusForbidden)
		return
	}
	f, err := ParseQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if h.count() >= maxTaps {
		http.Error(w, errTooMany.Error(), http.StatusServiceUnavailable)
		return
	}
	// The server's timeouts are for requests that end; a tap lasts as
	// long as its client wants (and an expired read deadline would
	// cancel the request).
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	_ = rc.SetReadDeadline(time.Time{})
	t := h.Open(f)
	defer t.Close()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	// A client that stops reading is let go after tapWriteTimeout, rather
	// than hold a tap slot, and make every event pay for the tap, while
	// its connection lives.
	alive := func() error {
		if err := rc.SetWriteDeadline(time.Now().Add(tapWriteTimeout)); !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
	stream(r.Context(), t, w, rc.Flush, alive)
}

// tapWriteTimeout is how long a write to a tap's client may wait.
var tapWriteTimeout = 30 * time.Second

// stream writes t's events to w until ctx ends, the limit is reached or a
// write fails; at most every second (and at the end) it flushes and says
// how many events were dropped. alive, called every second, bounds how
// long the writes may take from then.
func stream(ctx context.Context, t *Tap, w io.Writer, flush, alive func() error) {
	if err := alive(); err != nil {
		return
	}
	enc := json.NewEncoder(w)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	report := func() error {
		if n := t.Dropped(); n > 0 {
			if err := enc.Encode(&Event{Stage: t.filter.Stage, Time: time.Now().UTC(), Dropped: n}); err != nil {
				return err
			}
		}
		return flush()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-t.Events():
			if !ok {
				_ = report()
				return
			}
			t.taken(e)
			if err := enc.Encode(e); err != nil {
				return
			}
			if len(t.Events()) == 0 {
				if err := flush(); err != nil {
					return
				}
			}
		case <-tick.C:
			if err := alive(); err != nil {
				return
			}
			if err := report(); err != nil {
				return
			}
		}
	}
}

// proxyHeaders are the headers a proxy adds to what it relays.
var proxyHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-Ip", "Via"}

// local reports whether r, from a loopback address, was also made to one
// and carries no proxy's header. A service mesh's sidecar relays the
// cluster's requests from a loopback address (Istio's from 127.0.0.6) to
// the pod's own address; kubectl exec and port-forward connect to
// 127.0.0.1. A reverse proxy on the host says so in its headers.
func local(r *http.Request) bool {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && !loopback(a.String()) {
		return false
	}
	for _, h := range proxyHeaders {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return true
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Read opens a tap on the process serving HTTP at addr (host:port) and
// copies its events to w, one JSON object a line, until ctx ends or the
// limit is reached.
func Read(ctx context.Context, addr string, f Filter, w io.Writer) error {
	u := "http://" + addr + Path + "?" + f.Query().Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("connecting to %s: %w (is a sluice process serving http.listen there?)", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s: %s: %s", u, resp.Status, strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		if _, err := fmt.Fprintf(w, "%s\n", sc.Bytes()); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the tap: %w", err)
	}
	return nil
}
