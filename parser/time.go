package parser

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// timestampLayout is the layout of @timestamp: RFC 3339 in UTC with
// milliseconds.
const timestampLayout = "2006-01-02T15:04:05.000Z"

// formatTime writes t as @timestamp holds it: RFC 3339 in UTC with
// milliseconds.
func formatTime(t time.Time) string {
	var buf [32]byte
	return string(appendTimestamp(buf[:0], t))
}

// appendTimestamp appends t in timestampLayout, as t.UTC().AppendFormat
// does (fractions truncated, not rounded), but without interpreting the
// layout: years 0 to 9999, all that the parsers read but epoch numbers
// (those fall back to AppendFormat), are written directly.
func appendTimestamp(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(b, timestampLayout)
	}
	hour, minute, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	var s [len(timestampLayout)]byte
	put2 := func(i, v int) { s[i], s[i+1] = byte('0'+v/10), byte('0'+v%10) }
	put2(0, year/100)
	put2(2, year%100)
	s[4] = '-'
	put2(5, int(month))
	s[7] = '-'
	put2(8, day)
	s[10] = 'T'
	put2(11, hour)
	s[13] = ':'
	put2(14, minute)
	s[16] = ':'
	put2(17, sec)
	s[19] = '.'
	s[20] = byte('0' + ms/100)
	put2(21, ms%100)
	s[23] = 'Z'
	return append(b, s[:]...)
}

// representable passes t on if its UTC year is 0000 to 9999, what
// @timestamp's four-digit layout and a dated index name can write: with a
// zone, "9999-12-31T23:59:59-01:00" is in year 10000 in UTC, which used to
// be written with five digits that nothing read back, so the document's
// index fell back to year 1. A time outside is not read: the line keeps its
// read time and the raw value (see setServiceTime).
func representable(t time.Time, ok bool) (time.Time, bool) {
	if !ok {
		return time.Time{}, false
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}

// parseDateTime reads "2006-01-02T15:04:05" with an optional fraction (after
// '.' or ','), an optional zone, and ' ' allowed for 'T'.
func parseDateTime(s string) (time.Time, bool) {
	// layouts by the separator of date and time and by the zone: none
	// (UTC), "Z" or "+07:00", "+0700".
	layouts := [2][3]string{
		{"2006-01-02T15:04:05", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05Z0700"},
		{"2006-01-02 15:04:05", "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05Z0700"},
	}
	if len(s) < 19 || (s[10] != 'T' && s[10] != ' ') {
		return time.Time{}, false
	}
	sep := 0
	if s[10] == ' ' {
		sep = 1
	}
	zone := s[19:]
	if zone != "" && (zone[0] == '.' || zone[0] == ',') {
		zone = strings.TrimLeft(zone[1:], "0123456789")
	}
	var layout string
	switch {
	case zone == "":
		layout = layouts[sep][0]
	case zone == "Z" || len(zone) == len("+07:00"):
		layout = layouts[sep][1]
	case len(zone) == len("+0700"):
		layout = layouts[sep][2]
	default:
		return time.Time{}, false
	}
	t, err := time.Parse(layout, s)
	return representable(t, err == nil)
}

// parseEpoch reads a decimal epoch number written as a string.
func parseEpoch(s string) (time.Time, bool) {
	if s == "" || strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 {
		return time.Time{}, false
	}
	if !strings.Contains(s, ".") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return epochInt(n)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	return epochFloat(f)
}

// epochInt reads an epoch time in the unit its magnitude tells: seconds,
// milliseconds, microseconds or nanoseconds (see the package doc).
func epochInt(n int64) (time.Time, bool) {
	switch {
	case n < 0:
		return time.Time{}, false
	case n < 1e11:
		return representable(time.Unix(n, 0), true)
	case n < 1e14:
		return time.UnixMilli(n), true
	case n < 1e17:
		return time.UnixMicro(n), true
	}
	return time.Unix(0, n), true
}

// epochFloat is epochInt for numbers with a fraction, rounded to the
// microsecond (a float64 holds epoch seconds to about 0.2 µs).
func epochFloat(f float64) (time.Time, bool) {
	switch {
	case !(f >= 0) || f >= math.MaxInt64: // also NaN
		return time.Time{}, false
	case f < 1e11:
		return representable(time.UnixMicro(int64(math.Round(f*1e6))), true)
	case f < 1e14:
		return time.UnixMicro(int64(math.Round(f * 1e3))), true
	case f < 1e17:
		return time.UnixMicro(int64(math.Round(f))), true
	}
	return time.Unix(0, int64(f)), true
}

// parseTimeLocal reads nginx's $time_local, "25/Nov/2026:10:00:00 +0100".
func parseTimeLocal(s string) (time.Time, bool) {
	const months = "JanFebMarAprMayJunJulAugSepOctNovDec"
	if len(s) != len("25/Nov/2026:10:00:00 +0100") || s[2] != '/' || s[6] != '/' ||
		s[11] != ':' || s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return time.Time{}, false
	}
	m := strings.Index(months, s[3:6])
	day, okD := digits(s[0:2])
	year, okY := digits(s[7:11])
	hour, okH := digits(s[12:14])
	minute, okM := digits(s[15:17])
	sec, okS := digits(s[18:20])
	zh, okZH := digits(s[22:24])
	zm, okZM := digits(s[24:26])
	if m < 0 || m%3 != 0 || !(okD && okY && okH && okM && okS && okZH && okZM) ||
		hour > 23 || minute > 59 || sec > 59 || zm > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(m/3+1), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day { // 31/Nov, 00/Jan
		return time.Time{}, false
	}
	offset := time.Duration(zh*60+zm) * time.Minute
	switch s[21] {
	case '+':
		return representable(t.Add(-offset), true)
	case '-':
		return representable(t.Add(offset), true)
	}
	return time.Time{}, false
}

// digits reads a fixed-width unsigned decimal number.
func digits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
