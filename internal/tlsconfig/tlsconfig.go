// Package tlsconfig is the TLS part of a client configuration (Kafka,
// Elasticsearch): which CA to trust, which client certificate to present.
// Files are read and parsed by Validate, so a missing or malformed
// certificate stops a process at start and fails `sluice check`.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/sluicelog/sluice/internal/config"
)

// Config is the `tls:` block of a client.
type Config struct {
	// Enabled turns TLS on (for Kafka; Elasticsearch uses it for https://
	// addresses).
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of the CA certificates to trust; empty trusts
	// the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the PEM client certificate (with its chain)
	// and private key, for servers that ask for one (mutual TLS).
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the server's certificate must carry
	// (default: the host of the address dialled).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// it makes TLS worthless against an attacker in the middle.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Configured reports whether any key is set, which asks for TLS.
func (c Config) Configured() bool { return c != Config{} }

// Validate checks the files exist and parse. key is the block's path, e.g.
// kafka.tls.
func (c Config) Validate(key string) error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return config.Errorf(config.Join(key, "cert_file"), "cert_file and key_file go together: set both for a client certificate, or neither")
	}
	if c.CAFile != "" {
		if _, err := loadCA(c.CAFile); err != nil {
			return config.Errorf(config.Join(key, "ca_file"), "%v", err)
		}
	}
	if c.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			return config.Errorf(config.Join(key, "cert_file"), "cannot load the client certificate and key: %v", err)
		}
	}
	return nil
}

// Build returns the *tls.Config the files describe.
func (c Config) Build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify, //nolint:gosec // the operator asked for it; callers log a warning
	}
	if c.CAFile != "" {
		pool, err := loadCA(c.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func loadCA(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New(path + " holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	return pool, nil
}

// InsecureWarning is what callers log when InsecureSkipVerify is on.
const InsecureWarning = "TLS certificate verification is OFF (insecure_skip_verify): anyone between Sluice and the server can read and change the traffic; use ca_file instead"

// Untrusted reports whether err is the client refusing the server's
// certificate: an unknown authority, a wrong host name or an invalid
// certificate.
func Untrusted(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
