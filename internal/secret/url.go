package secret

import (
	"net/url"
	"strings"
)

// RedactURL returns addr with any password hidden, for messages and logs:
// https://user:xxxxx@host:9200. An address that does not parse as a URL
// is no safer to print: everything up to its last '@' goes, scheme aside,
// since the parser cannot say where a password in it ends.
func RedactURL(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.Scheme != "" && u.Host != "" {
		if u.User == nil {
			return addr
		}
		return u.Redacted()
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	scheme := ""
	if i := strings.Index(addr[:at], "://"); i >= 0 {
		scheme = addr[:i+3]
	}
	return scheme + "xxxxx" + addr[at:]
}
