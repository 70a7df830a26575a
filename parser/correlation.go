package parser

// setTraceparent sets trace.id and span.id from a W3C traceparent header,
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>", and reports
// whether v is one. The parent id is the span of whoever sent the header:
// nginx, which has no span of its own, passes the header on as it came,
// so the services' spans are its children. Ids that are all zeros are not
// valid, says the specification.
func setTraceparent(d *Doc, v string) bool {
	traceID, spanID, ok := parseTraceparent(v)
	if ok {
		d.SetKey(keyTraceID, d.StringValue(traceID))
		d.SetKey(keySpanID, d.StringValue(spanID))
	}
	return ok
}

// parseTraceparent returns the trace and parent ids of a traceparent.
func parseTraceparent(v string) (traceID, spanID string, ok bool) {
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || len(v) > 55 && v[55] != '-' ||
		!isLowerHex(v[:2]) || v[:2] == "ff" || !isLowerHex(v[3:35]) || !isLowerHex(v[36:52]) || !isLowerHex(v[53:55]) ||
		isZeros(v[3:35]) || isZeros(v[36:52]) {
		return "", "", false
	}
	return v[3:35], v[36:52], true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isZeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}
