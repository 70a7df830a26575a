package kibana

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/geoip"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/internal/template"
)

// savedObject is one line of sluice.ndjson.
type savedObject struct {
	Type                 string         `json:"type"`
	ID                   string         `json:"id"`
	Attributes           map[string]any `json:"attributes"`
	References           []reference    `json:"references"`
	CoreMigrationVersion string         `json:"coreMigrationVersion"`
	TypeMigrationVersion string         `json:"typeMigrationVersion"`
	Managed              *bool          `json:"managed"`
}

type reference struct {
	Name string `json:"name"`
	Type string `json:"type"`
	ID   string `json:"id"`
}

// objects parses SavedObjects strictly: every line one object with type,
// id and attributes, and no other top-level members.
func objects(t *testing.T) []savedObject {
	t.Helper()
	if !bytes.HasSuffix(SavedObjects, []byte("\n")) {
		t.Error("sluice.ndjson does not end with a newline")
	}
	var objs []savedObject
	for i, line := range bytes.Split(bytes.TrimSuffix(SavedObjects, []byte("\n")), []byte("\n")) {
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var o savedObject
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if dec.More() {
			t.Fatalf("line %d: more than one JSON value", i+1)
		}
		if o.Type == "" || o.ID == "" || o.Attributes == nil {
			t.Fatalf("line %d: type %q, id %q, attributes %v: all three are required", i+1, o.Type, o.ID, o.Attributes)
		}
		if o.References == nil {
			t.Errorf("line %d (%s %s): no references member (an empty list is written as [])", i+1, o.Type, o.ID)
		}
		objs = append(objs, o)
	}
	return objs
}

// jsonAttr decodes the attribute name of o, a JSON document in a string,
// as Kibana stores panelsJSON, layerListJSON and the like.
func jsonAttr(t *testing.T, o savedObject, name string, out any) {
	t.Helper()
	s, ok := o.Attributes[name].(string)
	if !ok {
		t.Fatalf("%s %s: attribute %s is missing or not a string", o.Type, o.ID, name)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("%s %s: attribute %s: %v", o.Type, o.ID, name, err)
	}
}

// dataViewID is the id the visualizations reference.
const dataViewID = "sluice-logs"

func TestSavedObjectsStructure(t *testing.T) {
	objs := objects(t)
	byKey := map[string]savedObject{}
	for _, o := range objs {
		key := o.Type + "/" + o.ID
		if _, dup := byKey[key]; dup {
			t.Errorf("%s appears twice", key)
		}
		byKey[key] = o
	}
	for _, o := range objs {
		key := o.Type + "/" + o.ID
		if title, _ := o.Attributes["title"].(string); title == "" {
			t.Errorf("%s has no title", key)
		}
		if !strings.HasPrefix(o.CoreMigrationVersion, "8.") || o.TypeMigrationVersion == "" {
			t.Errorf("%s: coreMigrationVersion %q, typeMigrationVersion %q; Kibana 8 needs both to know which migrations to run",
				key, o.CoreMigrationVersion, o.TypeMigrationVersion)
		}
		if !slices.Contains([]string{"index-pattern", "lens", "map", "search", "dashboard"}, o.Type) {
			t.Errorf("%s: unexpected type", key)
		}
		names := map[string]bool{}
		for _, r := range o.References {
			if r.Name == "" || r.Type == "" || r.ID == "" {
				t.Errorf("%s: reference %+v lacks name, type or id", key, r)
			}
			if names[r.Name] {
				t.Errorf("%s: reference name %q used twice", key, r.Name)
			}
			names[r.Name] = true
			if _, ok := byKey[r.Type+"/"+r.ID]; !ok {
				t.Errorf("%s: reference %s to %s %s, which is not in sluice.ndjson", key, r.Name, r.Type, r.ID)
			}
		}
	}

	dv, ok := byKey["index-pattern/"+dataViewID]
	if !ok {
		t.Fatalf("no data view index-pattern/%s", dataViewID)
	}
	if got := dv.Attributes["timeFieldName"]; got != "@timestamp" {
		t.Errorf("data view time field %v, want @timestamp", got)
	}
	// The data view must cover every index the default index name
	// template renders: logs-{type}-{service}-{environment}.
	idx, err := template.Parse(aggregator.DefaultIndex)
	if err != nil {
		t.Fatal(err)
	}
	title, _ := dv.Attributes["title"].(string)
	example := strings.ReplaceAll(idx.Pattern(), "*", "x")
	if ok, _ := path.Match(title, example); !ok || title != "logs-*" {
		t.Errorf("data view title %q does not match %s (an index of %s); want logs-*", title, example, aggregator.DefaultIndex)
	}
	// And the data streams of elasticsearch.data_stream:
	// {type}-{dataset}-{namespace}.
	if ok, _ := path.Match(title, "logs-nginx.access-prod"); !ok {
		t.Errorf("data view title %q does not match the data stream logs-nginx.access-prod", title)
	}
	for _, attr := range []string{"fields", "fieldAttrs", "fieldFormatMap", "runtimeFieldMap", "sourceFilters"} {
		var v any
		jsonAttr(t, dv, attr, &v)
	}
}

// dashboards are the dashboards sluice.ndjson must have.
var dashboards = []string{"sluice-overview", "sluice-api-performance"}

func TestDashboardPanels(t *testing.T) {
	objs := objects(t)
	var dashes []savedObject
	visualizations := map[string]bool{}
	for _, o := range objs {
		switch o.Type {
		case "dashboard":
			dashes = append(dashes, o)
		case "lens", "map", "search":
			visualizations[o.Type+"/"+o.ID] = false
		}
	}
	var ids []string
	for _, d := range dashes {
		ids = append(ids, d.ID)
		t.Run(d.ID, func(t *testing.T) { dashboardPanels(t, d, visualizations) })
	}
	slices.Sort(ids)
	want := slices.Sorted(slices.Values(dashboards))
	if !slices.Equal(ids, want) {
		t.Errorf("dashboards %v, want %v", ids, want)
	}
	for key, shown := range visualizations {
		if !shown {
			t.Errorf("%s is on no dashboard", key)
		}
	}
}

// dashboardPanels checks the panels of dash and marks the visualizations
// (and saved searches) they show in visualizations.
func dashboardPanels(t *testing.T, dash savedObject, visualizations map[string]bool) {
	var panels []struct {
		Version  string `json:"version"`
		Type     string `json:"type"`
		PanelIdx string `json:"panelIndex"`
		PanelRef string `json:"panelRefName"`
		GridData struct {
			X, Y, W, H int
			I          string
		} `json:"gridData"`
		Embedding map[string]any `json:"embeddableConfig"`
	}
	jsonAttr(t, dash, "panelsJSON", &panels)
	var options, search map[string]any
	jsonAttr(t, dash, "optionsJSON", &options)
	meta, _ := dash.Attributes["kibanaSavedObjectMeta"].(map[string]any)
	if s, ok := meta["searchSourceJSON"].(string); !ok || json.Unmarshal([]byte(s), &search) != nil {
		t.Errorf("dashboard kibanaSavedObjectMeta.searchSourceJSON missing or not JSON: %v", meta)
	}
	refs := map[string]reference{}
	for _, r := range dash.References {
		refs[r.Name] = r
	}
	var cells [48][200]string // grid occupancy, 48 columns wide
	for _, p := range panels {
		if p.PanelIdx == "" || p.GridData.I != p.PanelIdx {
			t.Errorf("panel %+v: gridData.i must equal panelIndex", p)
		}
		if p.PanelRef == "" || p.Embedding == nil {
			t.Errorf("panel %s: no panelRefName or embeddableConfig", p.PanelIdx)
			continue
		}
		r, ok := refs[p.PanelIdx+":"+p.PanelRef]
		if !ok {
			t.Errorf("panel %s: no reference named %s:%s", p.PanelIdx, p.PanelIdx, p.PanelRef)
			continue
		}
		if r.Type != p.Type {
			t.Errorf("panel %s is a %s but its reference is to a %s", p.PanelIdx, p.Type, r.Type)
		}
		key := r.Type + "/" + r.ID
		if _, ok := visualizations[key]; !ok {
			t.Errorf("panel %s shows %s, which is not a visualization or saved search in sluice.ndjson", p.PanelIdx, key)
		}
		visualizations[key] = true
		g := p.GridData
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 48 || g.Y+g.H > 200 {
			t.Errorf("panel %s: gridData %+v outside the 48-column grid", p.PanelIdx, g)
			continue
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other := cells[x][y]; other != "" {
					t.Fatalf("panels %s and %s overlap at %d,%d", other, p.PanelIdx, x, y)
				}
				cells[x][y] = p.PanelIdx
			}
		}
	}
	if len(dash.References) != len(panels) {
		t.Errorf("dashboard has %d references for %d panels", len(dash.References), len(panels))
	}
}

// fieldUse is a field a visualization reads, and how.
type fieldUse struct {
	object, field string
	// kind is what the use needs of the field's mapping: date, number,
	// aggregatable (keyword or number), geo_point or any.
	kind string
}

// kqlField finds the field names of "field : value" and "field >= value"
// clauses in a KQL query.
var kqlField = regexp.MustCompile(`([A-Za-z@_][A-Za-z0-9@_.]*)\s*(?::|<=|>=|<|>)`)

// kqlDataset finds the values of "event.dataset : value" clauses.
var kqlDataset = regexp.MustCompile(`event\.dataset\s*:\s*"?([^"\s)]+)"?`)

// formulaKQL finds the kql='...' filters in a Lens formula.
var formulaKQL = regexp.MustCompile(`kql='([^']*)'`)

// kqlUses returns the fields a KQL query of object reads.
func kqlUses(object, query string) []fieldUse {
	var uses []fieldUse
	for _, m := range kqlField.FindAllStringSubmatch(query, -1) {
		uses = append(uses, fieldUse{object, m[1], "aggregatable"})
	}
	return uses
}

// lensColumn is a column of a Lens formBased layer.
type lensColumn struct {
	Label         string         `json:"label"`
	DataType      string         `json:"dataType"`
	OperationType string         `json:"operationType"`
	SourceField   string         `json:"sourceField"`
	IsBucketed    bool           `json:"isBucketed"`
	Params        map[string]any `json:"params"`
	References    []string       `json:"references"`
	Filter        *struct {
		Query    string `json:"query"`
		Language string `json:"language"`
	} `json:"filter"`
}

// lensState is the part of a Lens object's state the tests read.
type lensState struct {
	DatasourceStates struct {
		FormBased struct {
			Layers map[string]struct {
				ColumnOrder []string              `json:"columnOrder"`
				Columns     map[string]lensColumn `json:"columns"`
			} `json:"layers"`
		} `json:"formBased"`
	} `json:"datasourceStates"`
	Visualization struct {
		PreferredSeriesType string `json:"preferredSeriesType"`
		Layers              []struct {
			LayerID       string   `json:"layerId"`
			LayerType     string   `json:"layerType"`
			SeriesType    string   `json:"seriesType"`
			XAccessor     string   `json:"xAccessor"`
			SplitAccessor string   `json:"splitAccessor"`
			Accessors     []string `json:"accessors"`
		} `json:"layers"`
		// lnsDatatable
		LayerID   string `json:"layerId"`
		LayerType string `json:"layerType"`
		Columns   []struct {
			ColumnID string `json:"columnId"`
		} `json:"columns"`
		Sorting *struct {
			ColumnID string `json:"columnId"`
		} `json:"sorting"`
	} `json:"visualization"`
	Query struct {
		Query    string `json:"query"`
		Language string `json:"language"`
	} `json:"query"`
	Filters []any `json:"filters"`
}

// lensOps returns what each column of a Lens object computes, as
// "percentile 95 of nginx.request_time", "count where <KQL>" or
// "formula <text>", to check that a chart shows what its title promises.
func lensOps(t *testing.T, o savedObject) []string {
	t.Helper()
	state := decodeLens(t, o)
	var ops []string
	for _, layer := range state.DatasourceStates.FormBased.Layers {
		for _, c := range layer.Columns {
			switch {
			case c.OperationType == "percentile":
				ops = append(ops, fmt.Sprintf("percentile %v of %s", c.Params["percentile"], c.SourceField))
			case c.OperationType == "count" && c.Filter != nil:
				ops = append(ops, "count where "+c.Filter.Query)
			case c.OperationType == "formula":
				ops = append(ops, fmt.Sprint("formula ", c.Params["formula"]))
			default:
				ops = append(ops, c.OperationType+" of "+c.SourceField)
			}
		}
	}
	return ops
}

func decodeLens(t *testing.T, o savedObject) lensState {
	t.Helper()
	var state lensState
	raw, err := json.Marshal(o.Attributes["state"])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatalf("%s/%s: state: %v", o.Type, o.ID, err)
	}
	return state
}

// lensFields checks a Lens object's internal consistency and returns the
// fields it reads.
func lensFields(t *testing.T, o savedObject) []fieldUse {
	t.Helper()
	key := o.Type + "/" + o.ID
	state := decodeLens(t, o)
	vtype := o.Attributes["visualizationType"]
	if vtype != "lnsXY" && vtype != "lnsDatatable" {
		t.Errorf("%s: visualizationType %v; this test knows lnsXY and lnsDatatable only", key, vtype)
	}
	layers := state.DatasourceStates.FormBased.Layers
	if len(layers) == 0 {
		t.Fatalf("%s: no formBased layers", key)
	}
	var uses []fieldUse
	for id, layer := range layers {
		found := false
		for _, r := range o.References {
			if r.Name == "indexpattern-datasource-layer-"+id && r.Type == "index-pattern" && r.ID == dataViewID {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: layer %s has no reference indexpattern-datasource-layer-%s to the data view", key, id, id)
		}
		order := slices.Clone(layer.ColumnOrder)
		slices.Sort(order)
		var cols []string
		for c := range layer.Columns {
			cols = append(cols, c)
		}
		slices.Sort(cols)
		if !slices.Equal(order, cols) {
			t.Errorf("%s: columnOrder %v does not list the columns %v", key, layer.ColumnOrder, cols)
		}
		for name, c := range layer.Columns {
			want := map[string]struct {
				kind, dataType string
				bucketed       bool
			}{
				"date_histogram": {"date", "date", true},
				// Range mode (fixed intervals) buckets into labelled
				// strings; histogram mode into numbers.
				"range":      {"number", map[bool]string{true: "string", false: "number"}[c.Params["type"] == "range"], true},
				"terms":      {"aggregatable", "", true},
				"percentile": {"number", "number", false},
				"count":      {"any", "number", false},
				// A formula is shown through the math column it
				// references, which combines the helper columns Lens
				// keeps beside it; the fields are the helpers'.
				"formula": {"any", "number", false},
				"math":    {"any", "number", false},
			}[c.OperationType]
			if want.kind == "" {
				t.Errorf("%s: column %s: operation %q unknown to this test", key, name, c.OperationType)
				continue
			}
			if (want.dataType != "" && c.DataType != want.dataType) || c.IsBucketed != want.bucketed {
				t.Errorf("%s: column %s: %s with dataType %s, isBucketed %v", key, name, c.OperationType, c.DataType, c.IsBucketed)
			}
			for _, ref := range c.References {
				if _, ok := layer.Columns[ref]; !ok {
					t.Errorf("%s: column %s references %s, which is not a column of layer %s", key, name, ref, id)
				}
			}
			if c.Filter != nil {
				if c.Filter.Language != "kuery" {
					t.Errorf("%s: column %s: filter language %q, want kuery", key, name, c.Filter.Language)
				}
				uses = append(uses, kqlUses(key, c.Filter.Query)...)
			}
			if c.OperationType == "terms" {
				termsOrder(t, key, name, c, layer.Columns)
			}
			switch c.OperationType {
			case "count":
				if c.SourceField != "___records___" {
					t.Errorf("%s: column %s counts %q, want ___records___", key, name, c.SourceField)
				}
				continue
			case "formula":
				formulaColumn(t, key, name, c, layer.Columns)
				continue
			case "math":
				names := mathColumns(c.Params["tinymathAst"])
				slices.Sort(names)
				refs := slices.Sorted(slices.Values(c.References))
				if len(names) == 0 || !slices.Equal(slices.Compact(names), refs) {
					t.Errorf("%s: column %s: math over %v but references %v", key, name, names, c.References)
				}
				continue
			}
			uses = append(uses, fieldUse{key, c.SourceField, want.kind})
		}
	}
	accessorsOf := func(layerID string, accessors []string) {
		layer, ok := layers[layerID]
		if !ok {
			t.Errorf("%s: visualization layer %s is not a datasource layer", key, layerID)
			return
		}
		for _, a := range accessors {
			if _, ok := layer.Columns[a]; !ok {
				t.Errorf("%s: accessor %q is not a column of layer %s", key, a, layerID)
			}
		}
	}
	switch vtype {
	case "lnsXY":
		for _, l := range state.Visualization.Layers {
			accessors := append(slices.Clone(l.Accessors), l.XAccessor)
			if l.SplitAccessor != "" {
				accessors = append(accessors, l.SplitAccessor)
			}
			accessorsOf(l.LayerID, accessors)
			if !slices.Contains([]string{"bar_stacked", "bar_horizontal", "bar_horizontal_stacked", "line", "area", "bar"}, l.SeriesType) || l.LayerType != "data" {
				t.Errorf("%s: layer %s: seriesType %q, layerType %q", key, l.LayerID, l.SeriesType, l.LayerType)
			}
		}
	case "lnsDatatable":
		v := state.Visualization
		var accessors []string
		for _, c := range v.Columns {
			accessors = append(accessors, c.ColumnID)
		}
		if v.Sorting != nil {
			accessors = append(accessors, v.Sorting.ColumnID)
		}
		if len(v.Columns) == 0 || v.LayerType != "data" {
			t.Errorf("%s: table of %d columns, layerType %q", key, len(v.Columns), v.LayerType)
		}
		accessorsOf(v.LayerID, accessors)
	}
	if state.Query.Language != "kuery" {
		t.Errorf("%s: query language %q, want kuery", key, state.Query.Language)
	}
	uses = append(uses, kqlUses(key, state.Query.Query)...)
	if state.Filters == nil {
		t.Errorf("%s: no filters list", key)
	}
	return uses
}

// formulaColumn checks that a formula column's text matches the helper
// columns Lens computes it with: each kql='...' of the text is the filter
// of a count it references (through its math column), and the formula is
// not marked broken.
func formulaColumn(t *testing.T, key, name string, c lensColumn, columns map[string]lensColumn) {
	t.Helper()
	text, _ := c.Params["formula"].(string)
	if text == "" || c.Params["isFormulaBroken"] != false || len(c.References) != 1 {
		t.Errorf("%s: column %s: formula %q, isFormulaBroken %v, references %v", key, name, text, c.Params["isFormulaBroken"], c.References)
		return
	}
	var filters []string
	var walk func(id string)
	walk = func(id string) {
		h, ok := columns[id]
		if !ok {
			return
		}
		if h.Filter != nil {
			filters = append(filters, h.Filter.Query)
		}
		for _, r := range h.References {
			walk(r)
		}
	}
	walk(c.References[0])
	for _, m := range formulaKQL.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(filters, m[1]) {
			t.Errorf("%s: column %s: formula filter %q is no helper column's filter (%q)", key, name, m[1], filters)
		}
	}
}

// termsOrder checks that a terms column ranks its buckets by a column
// Elasticsearch computes: a formula and its math run in Kibana after the
// search, so the terms aggregation cannot be ordered by them.
func termsOrder(t *testing.T, key, name string, c lensColumn, columns map[string]lensColumn) {
	t.Helper()
	order, _ := c.Params["orderBy"].(map[string]any)
	if order["type"] != "column" {
		return // alphabetical, or a custom aggregation
	}
	id, _ := order["columnId"].(string)
	by, ok := columns[id]
	switch {
	case !ok:
		t.Errorf("%s: column %s ranks by %q, which is not a column", key, name, id)
	case by.IsBucketed || by.OperationType == "formula" || by.OperationType == "math":
		t.Errorf("%s: column %s ranks by %s, a %s Elasticsearch cannot order a terms aggregation by", key, name, id, by.OperationType)
	}
}

// mathColumns returns the column ids a tinymath AST reads: its string
// leaves (numbers are constants, objects are nested functions).
func mathColumns(ast any) []string {
	switch n := ast.(type) {
	case string:
		return []string{n}
	case map[string]any:
		var ids []string
		args, _ := n["args"].([]any)
		for _, a := range args {
			ids = append(ids, mathColumns(a)...)
		}
		return ids
	}
	return nil
}

// searchFields checks a saved search and returns the fields it reads.
func searchFields(t *testing.T, o savedObject) []fieldUse {
	t.Helper()
	key := o.Type + "/" + o.ID
	var attrs struct {
		Columns []string   `json:"columns"`
		Sort    [][]string `json:"sort"`
		Meta    struct {
			SearchSource string `json:"searchSourceJSON"`
		} `json:"kibanaSavedObjectMeta"`
	}
	raw, _ := json.Marshal(o.Attributes)
	if err := json.Unmarshal(raw, &attrs); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var source struct {
		Query struct {
			Query    string `json:"query"`
			Language string `json:"language"`
		} `json:"query"`
		Filter       []any  `json:"filter"`
		IndexRefName string `json:"indexRefName"`
	}
	if err := json.Unmarshal([]byte(attrs.Meta.SearchSource), &source); err != nil {
		t.Fatalf("%s: searchSourceJSON: %v", key, err)
	}
	found := false
	for _, r := range o.References {
		if r.Name == source.IndexRefName && r.Type == "index-pattern" && r.ID == dataViewID {
			found = true
		}
	}
	if source.IndexRefName == "" || !found {
		t.Errorf("%s: indexRefName %q is not a reference to the data view", key, source.IndexRefName)
	}
	if source.Query.Language != "kuery" || source.Filter == nil {
		t.Errorf("%s: query language %q, filter %v; want kuery and a list", key, source.Query.Language, source.Filter)
	}
	if len(attrs.Columns) == 0 {
		t.Errorf("%s: no columns", key)
	}
	var uses []fieldUse
	for _, c := range attrs.Columns {
		uses = append(uses, fieldUse{key, c, "any"})
	}
	for _, s := range attrs.Sort {
		if len(s) != 2 || (s[1] != "asc" && s[1] != "desc") {
			t.Errorf("%s: sort %v, want [field, asc|desc]", key, s)
			continue
		}
		// Sorting reads doc values, as aggregating does.
		uses = append(uses, fieldUse{key, s[0], "aggregatable"})
	}
	return append(uses, kqlUses(key, source.Query.Query)...)
}

// objectFields returns the fields o reads, for the types that read any.
func objectFields(t *testing.T, o savedObject) []fieldUse {
	t.Helper()
	switch o.Type {
	case "lens":
		return lensFields(t, o)
	case "map":
		return mapFields(t, o)
	case "search":
		return searchFields(t, o)
	}
	return nil
}

// mapFields checks a map object and returns the fields it reads.
func mapFields(t *testing.T, o savedObject) []fieldUse {
	t.Helper()
	key := o.Type + "/" + o.ID
	var layers []struct {
		ID               string `json:"id"`
		Type             string `json:"type"`
		SourceDescriptor struct {
			Type                string   `json:"type"`
			GeoField            string   `json:"geoField"`
			IndexPatternRefName string   `json:"indexPatternRefName"`
			TooltipProperties   []string `json:"tooltipProperties"`
			SortField           string   `json:"sortField"`
		} `json:"sourceDescriptor"`
	}
	jsonAttr(t, o, "layerListJSON", &layers)
	var mapState, uiState map[string]any
	jsonAttr(t, o, "mapStateJSON", &mapState)
	jsonAttr(t, o, "uiStateJSON", &uiState)
	var uses []fieldUse
	ids := map[string]bool{}
	for _, l := range layers {
		if ids[l.ID] {
			t.Errorf("%s: layer id %s used twice", key, l.ID)
		}
		ids[l.ID] = true
		sd := l.SourceDescriptor
		if !strings.HasPrefix(sd.Type, "ES_") {
			continue
		}
		found := false
		for _, r := range o.References {
			if r.Name == sd.IndexPatternRefName && r.Type == "index-pattern" && r.ID == dataViewID {
				found = true
			}
		}
		if sd.IndexPatternRefName == "" || !found {
			t.Errorf("%s: layer %s: indexPatternRefName %q is not a reference to the data view", key, l.ID, sd.IndexPatternRefName)
		}
		uses = append(uses, fieldUse{key, sd.GeoField, "geo_point"})
		for _, f := range sd.TooltipProperties {
			uses = append(uses, fieldUse{key, f, "any"})
		}
		if sd.SortField != "" {
			uses = append(uses, fieldUse{key, sd.SortField, "date"})
		}
	}
	return uses
}

// producedFields returns the fields of documents as Sluice writes them:
// an nginx line and a service line built as the aggregator builds them
// (parsers, user agent, ECS and shipper fields, through `sluice test`'s
// Tester), the nginx client located by GeoIP (no database here: its
// fields added as the enricher adds them).
func producedFields(t *testing.T) map[string]any {
	t.Helper()
	tester, err := aggregator.NewTester(aggregator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tester.Close()
	docs := map[string]any{}
	for _, ev := range []event.Event{
		{Type: "nginx", Node: "n1", Path: "/var/log/nginx/access.log", Fields: map[string]string{"service": "edge", "environment": "prod"},
			Line: []byte(`81.2.69.142 - - [25/Nov/2026:10:00:00 +0000] "GET /api/v1/orders?id=1 HTTP/1.1" 503 1234 "-" ` +
				`"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1" 0.012 0.010 "-"`)},
		{Type: "service", Node: "n1", Path: "/var/log/app/prod/acme/checkout/app.log", Fields: map[string]string{"service": "checkout", "environment": "prod"},
			Line: []byte(`{"ts":"2026-11-25T10:00:00Z","level":"ERROR","msg":"payment failed",` +
				`"request_id":"3f2a9c1e","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}`)},
	} {
		r := tester.Document(ev)
		if r.Doc == nil {
			t.Fatalf("%s line dropped by %s", ev.Type, r.DroppedBy)
		}
		if ev.Type == "nginx" {
			geoip.Result{Lat: 51.5142, Lon: -0.0931, HasLocation: true, CountryISOCode: "GB"}.AddTo(r.Doc, "source")
		}
		for k, v := range r.Doc.All() {
			if _, ok := docs[k]; !ok || ev.Type == "nginx" { // event.dataset: the nginx one, which the charts name
				docs[k] = v
			}
		}
	}
	return docs
}

// mappingKinds says which mapping types satisfy each kind of use.
var mappingKinds = map[string][]string{
	"date":         {"date"},
	"number":       {"long", "integer", "short", "float", "double", "scaled_float"},
	"aggregatable": {"keyword", "long", "integer", "float", "double", "date", "ip"},
	"geo_point":    {"geo_point"},
}

func TestVisualizationFieldsExist(t *testing.T) {
	mapped := aggregator.TemplateFields()
	produced := producedFields(t)
	var uses []fieldUse
	kinds := map[string]int{}
	for _, o := range objects(t) {
		kinds[o.Type]++
		uses = append(uses, objectFields(t, o)...)
	}
	if kinds["lens"] < 3 || kinds["map"] != 1 || kinds["search"] < 1 {
		t.Errorf("objects by type %v; want Lens charts, the map and saved searches", kinds)
	}
	for _, u := range uses {
		typ, ok := mapped[u.field]
		if !ok {
			t.Errorf("%s reads %s, which Sluice's index template does not map", u.object, u.field)
			continue
		}
		if u.kind != "any" && !slices.Contains(mappingKinds[u.kind], typ) {
			t.Errorf("%s uses %s as %s, but the template maps it as %s", u.object, u.field, u.kind, typ)
		}
		if _, ok := produced[u.field]; !ok {
			t.Errorf("%s reads %s, which no document Sluice writes has (fields: %s)", u.object, u.field, keys(produced))
		}
	}
}

// TestDashboardContent checks that the charts the dashboard promises read
// the fields they are about.
func TestDashboardContent(t *testing.T) {
	want := map[string][]string{
		"lens/sluice-nginx-requests-by-status": {"@timestamp", "http.response.status_code", "event.dataset"},
		"lens/sluice-top-services-by-errors":   {"service.name", "log.level"},
		"lens/sluice-nginx-latency":            {"@timestamp", "nginx.request_time", "nginx.upstream_response_time"},
		"lens/sluice-nginx-routes":             {"http.route", "nginx.request_time", "http.response.status_code"},
		"map/sluice-client-locations":          {"source.geo.location"},
		"lens/sluice-nginx-user-agents":        {"user_agent.name", "user_agent.os.name", "event.dataset"},
		// The API performance dashboard.
		"lens/sluice-api-requests-by-route":   {"@timestamp", "http.route", "event.dataset"},
		"lens/sluice-api-error-rate-by-route": {"http.route", "http.response.status_code", "event.dataset"},
		"lens/sluice-api-latency-by-route":    {"http.route", "nginx.request_time", "nginx.upstream_response_time"},
		"lens/sluice-api-slowest-routes":      {"http.route", "nginx.request_time", "nginx.upstream_response_time", "nginx.own_time"},
		"lens/sluice-api-nginx-overhead":      {"http.route", "nginx.own_time"},
		"lens/sluice-api-top-countries":       {"source.geo.country_iso_code", "event.dataset"},
		"search/sluice-api-slow-requests":     {"nginx.request_time", "http.request.id", "http.route", "event.dataset"},
		"search/sluice-request-by-id": {"@timestamp", "event.dataset", "service.name", "http.route", "message",
			"http.request.id"},
	}
	// What the charts compute, where the field alone does not say it.
	wantOps := map[string][]string{
		"lens/sluice-api-requests-by-route": {"count of ___records___"},
		"lens/sluice-api-error-rate-by-route": {
			"formula count(kql='http.response.status_code >= 500') / count()",
			"formula count(kql='http.response.status_code >= 400 and http.response.status_code < 500') / count()",
		},
		"lens/sluice-api-latency-by-route": {
			"percentile 50 of nginx.request_time", "percentile 95 of nginx.request_time", "percentile 99 of nginx.request_time",
			"percentile 50 of nginx.upstream_response_time", "percentile 95 of nginx.upstream_response_time",
			"percentile 99 of nginx.upstream_response_time",
		},
		"lens/sluice-api-slowest-routes": {"percentile 95 of nginx.request_time", "percentile 99 of nginx.request_time",
			"formula count(kql='http.response.status_code >= 500') / count()"},
		"lens/sluice-api-nginx-overhead": {"percentile 50 of nginx.own_time", "percentile 95 of nginx.own_time",
			"percentile 99 of nginx.own_time"},
	}
	got := map[string][]string{}
	gotOps := map[string][]string{}
	for _, o := range objects(t) {
		for _, u := range objectFields(t, o) {
			got[u.object] = append(got[u.object], u.field)
		}
		if o.Type == "lens" {
			gotOps[o.Type+"/"+o.ID] = lensOps(t, o)
		}
	}
	for obj, fields := range want {
		for _, f := range fields {
			if !slices.Contains(got[obj], f) {
				t.Errorf("%s does not read %s (reads %v)", obj, f, got[obj])
			}
		}
	}
	for obj, ops := range wantOps {
		for _, op := range ops {
			if !slices.Contains(gotOps[obj], op) {
				t.Errorf("%s does not compute %s (computes %q)", obj, op, gotOps[obj])
			}
		}
	}
}

// TestQueriesMatchDatasets checks that every event.dataset a query or
// filter names is one Sluice writes: a chart of "nginx" after nginx
// documents became "nginx.access" shows nothing, and nothing else fails.
func TestQueriesMatchDatasets(t *testing.T) {
	written := producedFields(t)["event.dataset"]
	n := 0
	for _, line := range strings.Split(string(SavedObjects), "\n") {
		// Queries sit in JSON strings, some in JSON strings again.
		line = strings.ReplaceAll(line, `\`, "")
		for _, m := range kqlDataset.FindAllStringSubmatch(line, -1) {
			n++
			if m[1] != written {
				t.Errorf("a query matches event.dataset %q; nginx documents have %q: %.120s", m[1], written, line)
			}
		}
	}
	if n == 0 {
		t.Error("no query names event.dataset; the nginx charts should")
	}
}

func keys(m map[string]any) string {
	var k []string
	for f := range m {
		k = append(k, f)
	}
	slices.Sort(k)
	return fmt.Sprint(k)
}
