// Package kafkaclient is the security part of Sluice's Kafka clients, shared
// by the shipper and the aggregator: TLS (a CA, a client certificate) and
// SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), with the password inline, from
// ${VAR} or from a file. It turns the `kafka.tls` and `kafka.sasl` keys into
// franz-go options, and tells a misconfiguration (an untrusted certificate,
// a wrong password, TLS or SASL missing on one side) from an outage, so that
// a process fails at start on the first and keeps retrying on the second.
package kafkaclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/tlsconfig"
)

// Config is embedded in the shipper's and the aggregator's `kafka:` block.
type Config struct {
	TLS  tlsconfig.Config `yaml:"tls"`
	SASL SASLConfig       `yaml:"sasl"`
}

// SASLConfig authenticates to the brokers.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty turns SASL
	// off.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile: a file holding it (read again on every new
	// connection, so a rotated Kubernetes Secret is picked up).
	Password     secret.Value `yaml:"password"`
	PasswordFile string       `yaml:"password_file"`
	// AllowPlaintext lets SASL run without TLS (a SASL_PLAINTEXT
	// listener), which sends the password and every record in clear text:
	// refused unless asked for.
	AllowPlaintext bool `yaml:"allow_plaintext"`
}

// SASL mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismSCRAMSHA256 = "SCRAM-SHA-256"
	MechanismSCRAMSHA512 = "SCRAM-SHA-512"
)

// SetDefaults normalises the mechanism's spelling.
func (c *Config) SetDefaults() {
	c.SASL.Mechanism = strings.ToUpper(strings.TrimSpace(c.SASL.Mechanism))
}

// Validate checks the keys under key (e.g. kafka), reading the files they
// name. Call SetDefaults first.
func (c *Config) Validate(key string) error {
	tlsKey := config.Join(key, "tls")
	if !c.TLS.Enabled && c.TLS.Configured() {
		return config.Errorf(config.Join(tlsKey, "enabled"), "is false but other %s keys are set; set %s.enabled: true (or remove the other keys)", tlsKey, tlsKey)
	}
	if err := c.TLS.Validate(tlsKey); err != nil {
		return err
	}
	s := c.SASL
	saslKey := config.Join(key, "sasl")
	switch s.Mechanism {
	case "":
		if s.Username != "" || s.Password.IsSet() || s.PasswordFile != "" {
			return config.Errorf(config.Join(saslKey, "mechanism"), "is required with a username or password: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
		}
		return nil
	case MechanismPlain, MechanismSCRAMSHA256, MechanismSCRAMSHA512:
	default:
		return config.Errorf(config.Join(saslKey, "mechanism"), "%q is not supported; use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" {
		return config.Errorf(config.Join(saslKey, "username"), "is required with mechanism %s", s.Mechanism)
	}
	pw, err := secret.Resolve(s.Password, s.PasswordFile)
	if err != nil {
		return config.Errorf(config.Join(saslKey, "password_file"), "%v", err)
	}
	if !pw.IsSet() {
		return config.Errorf(config.Join(saslKey, "password"), "is required with mechanism %s; set password (e.g. \"${KAFKA_PASSWORD}\") or password_file", s.Mechanism)
	}
	if !c.TLS.Enabled && !s.AllowPlaintext {
		return config.Errorf(config.Join(config.Join(key, "tls"), "enabled"), "is false while SASL is on: the password and every record would cross the network unencrypted; "+
			"use a SASL_SSL listener with %s.tls.enabled: true, or set %s.allow_plaintext: true for a SASL_PLAINTEXT listener on a network you trust", key, saslKey)
	}
	return nil
}

// Opts returns the franz-go options for TLS and SASL, and logs a warning
// for settings that weaken them. Call Validate first.
func (c *Config) Opts(log *zap.Logger) ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if c.TLS.Enabled {
		tc, err := c.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("kafka.tls: %w", err)
		}
		if c.TLS.InsecureSkipVerify {
			log.Warn("kafka: " + tlsconfig.InsecureWarning)
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.mechanism(); m != nil {
		if !c.TLS.Enabled {
			log.Warn("kafka: SASL without TLS: the credentials and the data cross the network unencrypted",
				zap.String("mechanism", c.SASL.Mechanism))
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}

func (c *Config) mechanism() sasl.Mechanism {
	s := c.SASL
	password := func() (string, error) {
		pw, err := secret.Resolve(s.Password, s.PasswordFile)
		if err != nil {
			return "", fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		return pw.Reveal(), nil
	}
	switch s.Mechanism {
	case MechanismPlain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			pw, err := password()
			return plain.Auth{User: s.Username, Pass: pw}, err
		})
	case MechanismSCRAMSHA256, MechanismSCRAMSHA512:
		auth := func(context.Context) (scram.Auth, error) {
			pw, err := password()
			return scram.Auth{User: s.Username, Pass: pw}, err
		}
		if s.Mechanism == MechanismSCRAMSHA256 {
			return scram.Sha256(auth)
		}
		return scram.Sha512(auth)
	}
	return nil
}

// Check connects to the brokers once and returns an error when the
// connection cannot work however long it is retried: the broker's
// certificate is not trusted, the credentials are refused, or TLS or SASL
// is on at one end only. A broker that does not answer is an outage, not a
// misconfiguration: Check logs it and returns nil, and the client keeps
// retrying as it always does.
func (c *Config) Check(ctx context.Context, cl *kgo.Client, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var err error
	for attempt := 0; ; attempt++ {
		if err = cl.Ping(ctx); err == nil {
			return nil
		}
		fatal := c.Explain(err)
		var eof *kgo.ErrFirstReadEOF
		// A connection closed at once is how a listener answers the wrong
		// protocol, but a broker shutting down can do it too: ask again.
		if fatal != nil && errors.As(err, &eof) && attempt < 2 && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		if fatal != nil {
			return fatal
		}
		break
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return nil
	}
	log.Warn("kafka does not answer yet; retrying in the background", zap.Error(err))
	return nil
}

// Explain returns err wrapped with what to fix when it is a TLS or SASL
// misconfiguration that retrying cannot cure, and nil otherwise.
func (c *Config) Explain(err error) error {
	var (
		header tls.RecordHeaderError
		alert  tls.AlertError
		eof    *kgo.ErrFirstReadEOF
		opErr  *net.OpError
	)
	switch {
	case tlsconfig.Untrusted(err):
		return fmt.Errorf("kafka TLS: the broker's certificate is not trusted; check kafka.tls.ca_file and kafka.tls.server_name: %w", err)
	case errors.As(err, &header):
		return fmt.Errorf("kafka TLS: the broker did not answer with TLS; is this a plaintext or SASL_PLAINTEXT listener? %w", err)
	case errors.As(err, &alert), errors.As(err, &opErr) && opErr.Op == "remote error":
		return fmt.Errorf("kafka TLS: the broker refused the handshake (a listener with client authentication needs kafka.tls.cert_file and key_file signed by a CA it trusts): %w", err)
	case errors.Is(err, kerr.SaslAuthenticationFailed):
		return fmt.Errorf("kafka SASL authentication failed for user %q with %s; check kafka.sasl.username and the password: %w",
			c.SASL.Username, c.SASL.Mechanism, err)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		return fmt.Errorf("kafka SASL: the broker does not enable mechanism %s on this listener; set kafka.sasl.mechanism to one it does: %w", c.SASL.Mechanism, err)
	case errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("kafka SASL: %w", err)
	case errors.As(err, &eof):
		return fmt.Errorf("kafka: the broker closed the connection at once, so the listener's protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) and kafka.tls/kafka.sasl do not match: %w", err)
	case strings.Contains(err.Error(), "invalid large response size"):
		// franz-go's error (a plain string) when the first answer is not
		// Kafka's protocol: a TLS alert to a plaintext client, or HTTP.
		return fmt.Errorf("kafka: the broker's answer is not the Kafka protocol; is TLS missing (kafka.tls.enabled) or is this not a Kafka port? %w", err)
	case errors.As(err, &opErr) && strings.Contains(opErr.Error(), "tls:"):
		return fmt.Errorf("kafka TLS: %w", err)
	}
	return nil
}
