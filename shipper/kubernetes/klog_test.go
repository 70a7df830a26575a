package kubernetes

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"k8s.io/klog/v2"
)

// TestLogTo: client-go's klog lines reach zap: errors as warnings with
// their key and value pairs, V(0) as information, verbose ones not at all.
func TestLogTo(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	LogTo(zap.New(core))
	defer klog.ClearLogger()
	klog.ErrorS(errors.New("connection refused"), "failed to list", "resource", "pods")
	klog.InfoS("caches populated", "type", "Pod")
	klog.V(4).InfoS("verbose")
	klog.Flush()
	got := logs.All()
	if len(got) != 2 || got[0].Level != zapcore.WarnLevel || got[0].Message != "failed to list" || got[0].ContextMap()["resource"] != "pods" ||
		got[1].Level != zapcore.InfoLevel {
		t.Errorf("logged %+v", got)
	}
}
