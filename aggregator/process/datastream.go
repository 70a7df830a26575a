package process

import (
	"strings"

	"github.com/sluicelog/sluice/parser"
)

// dataStreamFields returns the data_stream.* values of a data stream named
// by Elastic's {type}-{dataset}-{namespace} convention, or false for a name
// not of that form.
func dataStreamFields(name string) (typ, dataset, namespace string, ok bool) {
	first := strings.IndexByte(name, '-')
	last := strings.LastIndexByte(name, '-')
	if first <= 0 || last <= first+1 || last == len(name)-1 {
		return "", "", "", false
	}
	return name[:first], name[first+1 : last], name[last+1:], true
}

// Keys of data_stream.*.
var (
	keyDataStreamType      = parser.NewKey("data_stream.type")
	keyDataStreamDataset   = parser.NewKey("data_stream.dataset")
	keyDataStreamNamespace = parser.NewKey("data_stream.namespace")
)

// setDataStream sets data_stream.* to what the data stream's name says, as
// Elastic's own shippers do, for dashboards that filter on them.
func setDataStream(doc *parser.Doc, name string) {
	typ, dataset, namespace, ok := dataStreamFields(name)
	if !ok {
		return
	}
	doc.SetKey(keyDataStreamType, typ)
	doc.SetKey(keyDataStreamDataset, dataset)
	doc.SetKey(keyDataStreamNamespace, namespace)
}
