package kubernetes

import (
	"fmt"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

// LogTo sends client-go's own log lines (klog, which is process-wide) to
// log as JSON like the rest of Sluice's, instead of klog's text on stderr:
// its errors and warnings as warnings, its V(0) lines as information, the
// more verbose ones nowhere.
func LogTo(log *zap.Logger) {
	klog.SetLogger(logr.New(&zapSink{log: log}))
}

// zapSink is a logr.LogSink writing to zap.
type zapSink struct {
	log *zap.Logger
}

func (s *zapSink) Init(logr.RuntimeInfo)  {}
func (s *zapSink) Enabled(level int) bool { return level <= 0 }

func (s *zapSink) Info(level int, msg string, kv ...any) {
	if level <= 0 {
		s.log.Info(msg, zapFields(kv)...)
	}
}

func (s *zapSink) Error(err error, msg string, kv ...any) {
	s.log.Warn(msg, append(zapFields(kv), zap.Error(err))...)
}

func (s *zapSink) WithValues(kv ...any) logr.LogSink {
	return &zapSink{log: s.log.With(zapFields(kv)...)}
}

func (s *zapSink) WithName(name string) logr.LogSink {
	return &zapSink{log: s.log.Named(name)}
}

// zapFields turns logr's key and value pairs into zap fields.
func zapFields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
	}
	return out
}
