// Package kibana holds the Kibana saved objects that `sluice setup` imports
// (sluice.ndjson: the logs-* data view, the Lens visualizations, the client
// map, the saved searches, the overview and API performance dashboards),
// embedded in the binary so that the image needs no files besides itself.
package kibana

import _ "embed"

// FileName is the name the saved objects are imported under.
const FileName = "sluice.ndjson"

// SavedObjects is the content of sluice.ndjson: one saved object a line, in
// Kibana 8's export format.
//
//go:embed sluice.ndjson
var SavedObjects []byte
