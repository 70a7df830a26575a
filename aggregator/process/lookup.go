package process

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
	"github.com/sluicelog/sluice/parser"
)

// lookup returns where the document of rec, to be written to index, must be
// looked up before it is, or "" when it need not be: for a dated index
// name, the name with '*' for its dates; otherwise the name itself, which
// for a data stream or alias covers every index behind it. Call before doc
// is recycled. See deliver's dedupe.go for the duplicate check.
func (d *Documents) lookup(rec *kgo.Record, ev *event.Event, doc *parser.Doc, index string) string {
	if d == nil || !d.dedupe || d.suspect == nil || !d.suspect(rec, ev) {
		return ""
	}
	if d.index.HasDate() {
		return template.IndexName(d.index.RenderWildcard(indexLookup(ev, doc), template.IndexValue))
	}
	return index
}
