package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// ESProxy sits in front of Elasticsearch and injects faults: it can be
// taken down (connections dropped), and it can answer chosen bulk items
// with 429 without passing them on, as a node with a full write queue does.
type ESProxy struct {
	srv    *httptest.Server
	target string

	mu       sync.Mutex
	down     bool
	reject   func(id string, attempt int) bool
	attempts map[string]int
	rejected int
}

// ESProxy starts a fault-injecting proxy in front of the stack's
// Elasticsearch, closed when the test ends. URL is its address.
func (s *Stack) ESProxy(t testing.TB) *ESProxy {
	p := &ESProxy{target: s.Elasticsearch, attempts: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// URL is the proxy's address.
func (p *ESProxy) URL() string { return p.srv.URL }

// SetDown drops every request (the connection is closed) while down.
func (p *ESProxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

// RejectItems answers bulk items for which reject(id, attempt) is true with
// 429; attempt counts the times the proxy saw that id, from 1.
func (p *ESProxy) RejectItems(reject func(id string, attempt int) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reject = reject
}

// Rejected is how many items were answered 429.
func (p *ESProxy) Rejected() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rejected
}

func (p *ESProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	down, reject := p.down, p.reject
	p.mu.Unlock()
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if reject != nil && strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.bulk(w, r, body, reject)
		return
	}
	res, err := p.forward(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	for k, v := range res.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

func (p *ESProxy) forward(r *http.Request, body []byte) (*http.Response, error) {
	req, err := http.NewRequest(r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	return http.DefaultClient.Do(req)
}

// bulk forwards the items reject lets through and answers the others 429,
// merging both into one response in the request's order.
func (p *ESProxy) bulk(w http.ResponseWriter, r *http.Request, body []byte, reject func(string, int) bool) {
	type pair struct {
		action, source []byte
		id             string
		rejected       bool
	}
	var pairs []pair
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		action := append([]byte(nil), sc.Bytes()...)
		sc.Scan()
		var a map[string]struct {
			ID string `json:"_id"`
		}
		_ = json.Unmarshal(action, &a)
		var id string
		for _, v := range a {
			id = v.ID
		}
		pairs = append(pairs, pair{action: action, source: append([]byte(nil), sc.Bytes()...), id: id})
	}
	var fwd bytes.Buffer
	p.mu.Lock()
	for i := range pairs {
		p.attempts[pairs[i].id]++
		if reject(pairs[i].id, p.attempts[pairs[i].id]) {
			pairs[i].rejected = true
			p.rejected++
			continue
		}
		fwd.Write(pairs[i].action)
		fwd.WriteByte('\n')
		fwd.Write(pairs[i].source)
		fwd.WriteByte('\n')
	}
	p.mu.Unlock()
	var items []json.RawMessage
	if fwd.Len() > 0 {
		res, err := p.forward(r, fwd.Bytes())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer res.Body.Close()
		var br struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.NewDecoder(res.Body).Decode(&br); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		items = br.Items
	}
	var out []string
	k := 0
	for _, pr := range pairs {
		if pr.rejected {
			out = append(out, fmt.Sprintf(`{"index":{"_id":%q,"status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected by the test proxy"}}}`, pr.id))
			continue
		}
		out = append(out, string(items[k]))
		k++
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	fmt.Fprintf(w, `{"took":1,"errors":true,"items":[%s]}`, strings.Join(out, ","))
}
