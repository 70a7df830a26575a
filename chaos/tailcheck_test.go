package chaos

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestTailCheckCatchesDamage runs without the cluster: the content check
// of the tailing scenarios passes a line's own document and catches one
// cut short, one with another line's body, two lines glued together (not
// JSON: no seq, counted as a stray by the seq count) and a wrapped line
// whose message was not decoded.
func TestTailCheckCatchesDamage(t *testing.T) {
	r := &run{sc: scenario{tail: &tailSpec{mode: "rename"}}}
	doc := func(line string) (tailDoc, error) { return decodeTailDoc(json.RawMessage(line)) }
	good := tailLine(7, "2026-12-06T00:00:00Z", tailBody("rename", 7))
	if d, err := doc(good); err != nil || r.tailCheck(d) != "" {
		t.Fatalf("a line's own document: %v %q", err, r.tailCheck(d))
	}
	for name, line := range map[string]string{
		"cut":     tailLine(7, "", tailBody("rename", 7)[:10]),
		"another": tailLine(7, "", tailBody("rename", 8)),
	} {
		if d, err := doc(line); err != nil || r.tailCheck(d) == "" {
			t.Errorf("%s: not caught (%v)", name, err)
		}
	}
	glued := good[:len(good)/2] + tailLine(8, "", tailBody("rename", 8))
	var src struct {
		Seq *int `json:"seq"`
	}
	if json.Unmarshal([]byte(glued), &src) == nil && src.Seq != nil {
		t.Errorf("glued lines decode with seq %d", *src.Seq)
	}
	if b := tailBody("cri", 50); len([]rune(b)) != 10_000 || !strings.HasPrefix(b, "50-é-") {
		t.Errorf("cri long body: %d characters", len([]rune(b)))
	}
	w := &run{sc: scenario{tail: &tailSpec{mode: "wrapped"}}}
	undecoded := `{"seq":3,"body":` + mustJSON(tailBody("wrapped", 3)) + `,"message":"{\"message\":\"wrapped 3\"}"}`
	if d, err := doc(undecoded); err != nil || w.tailCheck(d) == "" {
		t.Errorf("undecoded wrapped message not caught (%v)", err)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
