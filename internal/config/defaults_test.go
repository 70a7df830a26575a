package config

import (
	"reflect"
	"testing"
	"time"
)

func TestFillZero(t *testing.T) {
	type inner struct {
		N    int
		List []string
	}
	type cfg struct {
		Name    string
		Wait    time.Duration
		On      *bool
		Inner   inner
		None    []string
		private int
	}
	yes := true
	def := cfg{Name: "d", Wait: time.Second, On: &yes, Inner: inner{N: 3, List: []string{"a"}}, None: []string{"x"}, private: 9}
	got := cfg{Wait: 5 * time.Second, Inner: inner{List: []string{"b"}}, None: []string{}}
	FillZero(&got, def)
	want := cfg{Name: "d", Wait: 5 * time.Second, On: &yes, Inner: inner{N: 3, List: []string{"b"}}, None: []string{}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FillZero = %+v, want %+v", got, want)
	}
}
