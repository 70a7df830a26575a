package telemetry

import (
	"net"
	"strconv"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/sluicelog/sluice/internal/config"
)

// Validate checks the section under key (e.g. http): the listen address is
// host:port with a port a socket can have, so that a process never fails
// to start on it after `sluice check` passed, and stall_after is a real
// wait. Call SetDefaults first.
func (c HTTPConfig) Validate(key string) error {
	k := config.Join(key, "listen")
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return config.Errorf(k, "%q is not host:port; write e.g. 127.0.0.1:9600, or 0.0.0.0:9600 for every interface", c.Listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return config.Errorf(k, "%q: the port must be a number from 0 to 65535", c.Listen)
	}
	if host != "" && net.ParseIP(host) == nil {
		if _, err := net.LookupHost(host); err != nil {
			return config.Errorf(k, "%q: host %s does not resolve; give an address such as 127.0.0.1 or 0.0.0.0", c.Listen, host)
		}
	}
	if c.StallAfter < time.Second {
		return config.Errorf(config.Join(key, "stall_after"), "must be at least 1s (e.g. 60s), got %s", c.StallAfter)
	}
	return nil
}

// Validate checks the level under key (e.g. log).
func (c LogConfig) Validate(key string) error {
	if c.Level == "" {
		return nil
	}
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil || lvl > zapcore.ErrorLevel {
		return config.Errorf(config.Join(key, "level"), "%q is not a level; use debug, info, warn or error", c.Level)
	}
	return nil
}
