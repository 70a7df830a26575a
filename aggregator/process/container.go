package process

import (
	"bytes"
	"strings"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/parser"
)

// containerLine fills doc from a container's line as services write them
// to stdout: a JSON object is read as a service's line (log.level,
// message and the service's fields); anything else is kept whole as
// message, as before.
func (p *parsers) containerLine(line []byte, doc *parser.Doc) {
	if t := bytes.TrimSpace(line); len(t) > 1 && t[0] == '{' && t[len(t)-1] == '}' {
		if err := p.service.Parse(line, doc); err == nil {
			return
		}
		doc.Reset()
	}
	doc.Set("message", string(line))
}

// maxHintedFormats bounds the nginx formats compiled for pods' hints.
const maxHintedFormats = 64

// nginxHinted returns the parser of a pod's sluice.io/nginx-format hint
// (event.FieldNginxFormat), or n and format if it has none or it does not
// compile.
func (p *parsers) nginxHinted(ev *event.Event, n *parser.Nginx, format string) (*parser.Nginx, string) {
	hint := ev.Fields[event.FieldNginxFormat]
	if hint == "" {
		return n, format
	}
	if h, ok := p.hinted[hint]; ok {
		if h == nil {
			return n, format
		}
		return h, hint
	}
	if p.hinted == nil || len(p.hinted) >= maxHintedFormats {
		p.hinted = map[string]*parser.Nginx{}
	}
	h, err := CompileNginx(hint)
	if err == nil {
		h.Routes = p.nginx.Routes
	} else {
		h = nil // indexed with the configured format; the format watch warns
	}
	p.hinted[strings.Clone(hint)] = h
	if h == nil {
		return n, format
	}
	return h, hint
}

// steering reports whether an event field steers the aggregator rather
// than belonging in the document.
func steering(field string) bool { return strings.HasPrefix(field, "sluice.") }
