package deliver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"go.uber.org/zap"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/secret"
	"github.com/sluicelog/sluice/internal/tlsconfig"
)

// Credentials returns the password and the API key, read from their files
// when those are set.
func (es *ElasticsearchConfig) Credentials() (password, apiKey secret.Value, err error) {
	if password, err = secret.Resolve(es.Password, es.PasswordFile); err != nil {
		return "", "", config.Errorf("elasticsearch.password_file", "%v", err)
	}
	if apiKey, err = secret.Resolve(es.APIKey, es.APIKeyFile); err != nil {
		return "", "", config.Errorf("elasticsearch.api_key_file", "%v", err)
	}
	return password, apiKey, nil
}

// NewESClient builds the Elasticsearch client: credentials, and TLS for
// https:// addresses. Call Validate first.
func NewESClient(es ElasticsearchConfig, log *zap.Logger) (*elasticsearch.Client, error) {
	password, apiKey, err := es.Credentials()
	if err != nil {
		return nil, err
	}
	cfg := elasticsearch.Config{
		Addresses:     es.Addresses,
		Username:      es.Username,
		Password:      password.Reveal(),
		APIKey:        apiKey.Reveal(),
		RetryOnStatus: []int{502, 503, 504},
		MaxRetries:    2,
	}
	if es.TLS.Configured() {
		tc, err := es.TLS.Build()
		if err != nil {
			return nil, fmt.Errorf("elasticsearch.tls: %w", err)
		}
		if es.TLS.InsecureSkipVerify {
			log.Warn("elasticsearch: " + tlsconfig.InsecureWarning)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		cfg.Transport = tr
	}
	if (password.IsSet() || apiKey.IsSet()) && !es.TLS.Configured() && !allHTTPS(es.Addresses) {
		log.Warn("elasticsearch: credentials over plain HTTP: anyone on the network can read them; use https://")
	}
	return elasticsearch.NewClient(cfg)
}

func allHTTPS(addrs []string) bool {
	for _, a := range addrs {
		if !strings.HasPrefix(a, "https://") {
			return false
		}
	}
	return true
}

// CheckES asks Elasticsearch once who it is, and returns an error for
// answers that no retry can cure: a certificate that is not trusted, TLS at
// one end only, credentials refused. An Elasticsearch that does not answer
// is an outage: it is logged, and the aggregator retries as it always does.
func CheckES(ctx context.Context, es *elasticsearch.Client, log *zap.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := es.Info(es.Info.WithContext(ctx))
	if err != nil {
		if fatal := explainESError(err); fatal != nil {
			return fatal
		}
		if ctx.Err() == nil || !errors.Is(ctx.Err(), context.Canceled) {
			log.Warn("elasticsearch does not answer yet; retrying in the background", zap.Error(err))
		}
		return nil
	}
	defer res.Body.Close()
	switch res.StatusCode {
	case http.StatusUnauthorized:
		return errors.New("elasticsearch refused the credentials (HTTP 401 Unauthorized); check elasticsearch.username and password (or password_file), or api_key (or api_key_file)")
	case http.StatusForbidden:
		log.Warn("elasticsearch: the credentials lack the monitor privilege (HTTP 403 on GET /); indexing may still work")
	case http.StatusBadRequest:
		body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		if strings.Contains(string(body), "HTTPS port") {
			return errors.New("elasticsearch answered HTTP 400: a plain HTTP request was sent to an HTTPS port; write https:// in elasticsearch.addresses")
		}
		return fmt.Errorf("elasticsearch answered HTTP 400 to GET /; is elasticsearch.addresses an Elasticsearch? %s", strings.TrimSpace(string(body)))
	}
	return nil
}

// explainESError wraps err with what to fix when it is a TLS problem, and
// returns nil for other errors.
func explainESError(err error) error {
	var header tls.RecordHeaderError
	switch {
	case tlsconfig.Untrusted(err):
		return fmt.Errorf("elasticsearch TLS: the server's certificate is not trusted; check elasticsearch.tls.ca_file and server_name: %w", err)
	case errors.As(err, &header), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("elasticsearch TLS: the server does not speak HTTPS on this port; write http:// or fix the port: %w", err)
	case strings.Contains(err.Error(), "remote error: tls:"):
		return fmt.Errorf("elasticsearch TLS: the server refused the handshake (it may want a client certificate: elasticsearch.tls.cert_file and key_file): %w", err)
	}
	return nil
}

// redactURL hides the password of a URL such as https://user:pw@host:9200.
func redactURL(addr string) string { return secret.RedactURL(addr) }

// RedactURLs is redactURL for a list, for logs.
func RedactURLs(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = redactURL(a)
	}
	return out
}

// Ping asks Elasticsearch for its cluster health: nil when it answers 200.
func Ping(ctx context.Context, es *elasticsearch.Client) error {
	res, err := es.Cluster.Health(es.Cluster.Health.WithContext(ctx))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("cluster health: %s", res.Status())
	}
	return nil
}
