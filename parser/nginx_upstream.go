package parser

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The upstream variables, each a list with one item per attempt.
const (
	upAddr     = iota // $upstream_addr
	upStatus          // $upstream_status
	upResponse        // $upstream_response_time
	upConnect         // $upstream_connect_time
	upHeader          // $upstream_header_time
	upCount
)

// upNames are the members of an attempt in nginx.upstream_attempts.
var upNames = [upCount]string{"addr", "status", "response_time", "connect_time", "header_time"}

// nginxLine gathers the values of a line that make fields together, which
// the variables may come in any order for: finish sets them.
type nginxLine struct {
	requestTime    int64 // nanoseconds
	hasRequestTime bool
	upstream       [upCount]string
	// upstreamTime is the sum of the upstream response times.
	upstreamTime    int64
	hasUpstreamTime bool
	requestID       string // $request_id
	incomingID      string // $http_x_request_id
	// The document values of url.path and url.original, the route's
	// source: kept here, they need no lookup.
	uri, target any
}

func (st *nginxLine) setRequestTime(d *Doc, v string) error {
	ns, ok := parseSeconds(v)
	if !ok {
		return errors.New("not a number of seconds: " + strconv.Quote(clip(v)))
	}
	d.SetKey(keyNginxRequestTime, d.FloatValue(float64(ns)/1e9))
	d.SetKey(keyEventDuration, d.IntValue(ns))
	st.requestTime, st.hasRequestTime = ns, true
	return nil
}

// finish sets the fields that take more than one variable: the upstream
// attempts and totals, nginx's own time, the request id and the route.
func (p *Nginx) finish(st *nginxLine, d *Doc) error {
	if err := st.setUpstream(d); err != nil {
		return fmt.Errorf("%w: %w", ErrNoMatch, err)
	}
	if st.hasRequestTime && st.hasUpstreamTime {
		// Both are rounded to the millisecond: a negative difference is
		// rounding, not time.
		own := max(st.requestTime-st.upstreamTime, 0)
		d.SetKey(keyNginxOwnTime, d.FloatValue(float64(own)/1e9))
	}
	// The id a client or a proxy in front sent is the one nginx passes on
	// (see the README's proxy_set_header), so it is the one the services
	// log; nginx's own is kept when it differs.
	switch {
	case st.incomingID != "":
		d.SetKey(keyHTTPRequestID, d.StringValue(st.incomingID))
		if st.requestID != "" && st.requestID != st.incomingID {
			d.SetKey(keyNginxRequestID, d.StringValue(st.requestID))
		}
	case st.requestID != "":
		d.SetKey(keyHTTPRequestID, d.StringValue(st.requestID))
	}
	setURLParts(d, st)
	path := st.uri
	if path == nil {
		path = st.target
	}
	if s, _ := path.(string); strings.HasPrefix(s, "/") {
		if r := p.Routes.Route(s); r == s {
			d.SetKey(keyHTTPRoute, path) // the same value, no copy
		} else {
			d.SetKey(keyHTTPRoute, d.StringValue(r))
		}
	}
	return nil
}

// setUpstream sets the upstream fields. nginx writes one item per server
// tried, separated by ", ", and " : " between the upstream groups of an
// internal redirect; "-" marks an item it has no value for (a server not
// reached). The totals are: nginx.upstream_addr, every address tried;
// nginx.upstream_status, the last status (the one relayed);
// nginx.upstream_response_time, _connect_time and _header_time, the sums;
// nginx.upstream_tries, the number of attempts. With more than one
// attempt, nginx.upstream_attempts keeps each as an object.
func (st *nginxLine) setUpstream(d *Doc) error {
	multi := false
	present := false
	for _, v := range st.upstream {
		if v != "" {
			present = true
			multi = multi || strings.IndexByte(v, ',') >= 0 || strings.Contains(v, " : ")
		}
	}
	if !present {
		return nil
	}
	if !multi {
		return st.setOneUpstream(d)
	}
	var items [upCount][]string
	tries := 0
	for i, v := range st.upstream {
		if v != "" {
			items[i] = splitUpstream(v)
			tries = max(tries, len(items[i]))
		}
	}
	attempts := make([]any, tries)
	for a := range attempts {
		attempts[a] = make(map[string]any, upCount)
	}
	var sums [upCount]int64
	var answered [upCount]int
	var times []float64 // nginx.upstream_response_times, as before attempts
	var addrs []string
	var status any
	for i := range items {
		for a, item := range items[i] {
			if item == "-" || item == "" {
				continue
			}
			m := attempts[a].(map[string]any)
			switch i {
			case upAddr:
				m[upNames[i]] = item
				addrs = append(addrs, item)
			case upStatus:
				n, err := strconv.ParseInt(item, 10, 64)
				if err != nil {
					return errors.New("$upstream_status: not an integer: " + strconv.Quote(clip(item)))
				}
				m[upNames[i]] = n
				status = n
			default:
				ns, ok := parseSeconds(item)
				if !ok {
					return errors.New("not a number of seconds: " + strconv.Quote(clip(item)))
				}
				m[upNames[i]] = float64(ns) / 1e9
				sums[i] += ns
				answered[i]++
				if i == upResponse {
					times = append(times, float64(ns)/1e9)
				}
			}
		}
	}
	if len(addrs) == 1 {
		d.SetKey(keyNginxUpstreamAddr, addrs[0])
	} else if len(addrs) > 1 {
		d.SetKey(keyNginxUpstreamAddr, addrs)
	}
	if status != nil {
		d.SetKey(keyNginxUpstreamStatus, status)
	}
	st.setUpstreamTimes(d, sums, answered)
	if len(times) > 1 {
		d.SetKey(keyNginxUpstreamResponseTimes, times)
	}
	d.SetKey(keyNginxUpstreamTries, intValue(d, int64(tries)))
	if tries > 1 {
		d.SetKey(keyNginxUpstreamAttempts, attempts)
	}
	return nil
}

// setOneUpstream is setUpstream for the common line, one attempt, which it
// sets without allocating.
func (st *nginxLine) setOneUpstream(d *Doc) error {
	var sums [upCount]int64
	var answered [upCount]int
	for i, v := range st.upstream {
		if v == "" {
			continue
		}
		switch i {
		case upAddr:
			d.SetKey(keyNginxUpstreamAddr, d.StringValue(v))
		case upStatus:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errors.New("$upstream_status: not an integer: " + strconv.Quote(clip(v)))
			}
			d.SetKey(keyNginxUpstreamStatus, intValue(d, n))
		default:
			ns, ok := parseSeconds(v)
			if !ok {
				return errors.New("not a number of seconds: " + strconv.Quote(clip(v)))
			}
			sums[i], answered[i] = ns, 1
		}
	}
	st.setUpstreamTimes(d, sums, answered)
	if st.upstream[upAddr] != "" || st.upstream[upStatus] != "" {
		d.SetKey(keyNginxUpstreamTries, int64(1))
	}
	return nil
}

// setUpstreamTimes sets the sums of the upstream times that had a value.
func (st *nginxLine) setUpstreamTimes(d *Doc, sums [upCount]int64, answered [upCount]int) {
	keys := [upCount]Key{upResponse: keyNginxUpstreamResponseTime, upConnect: keyNginxUpstreamConnectTime,
		upHeader: keyNginxUpstreamHeaderTime}
	for _, i := range [...]int{upResponse, upConnect, upHeader} {
		if answered[i] > 0 {
			d.SetKey(keys[i], d.FloatValue(float64(sums[i])/1e9))
		}
	}
	if answered[upResponse] > 0 {
		st.upstreamTime, st.hasUpstreamTime = sums[upResponse], true
	}
}

// splitUpstream splits an upstream variable's value into its items, at
// commas and at " : " (not at the colon of an address's port).
func splitUpstream(v string) []string {
	var items []string
	for part := range strings.SplitSeq(v, ",") {
		for item := range strings.SplitSeq(part, " : ") {
			items = append(items, strings.TrimSpace(item))
		}
	}
	return items
}

// setURLParts sets url.path (unless $uri did) and url.query from the
// request target, as the client sent it: still percent-encoded, where $uri
// is decoded. A target that is not a path ("*", junk on the HTTP port, a
// proxy's absolute URL) sets neither.
func setURLParts(d *Doc, st *nginxLine) {
	s, _ := st.target.(string)
	if !strings.HasPrefix(s, "/") {
		return
	}
	path, query, hasQuery := strings.Cut(s, "?")
	if st.uri == nil {
		if hasQuery {
			d.SetKey(keyURLPath, d.StringValue(path))
		} else {
			d.SetKey(keyURLPath, st.target) // the same value, no copy
		}
	}
	if query != "" {
		d.SetKey(keyURLQuery, d.StringValue(query))
	}
}
