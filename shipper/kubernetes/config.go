// Package kubernetes gives container log lines the metadata of their pod:
// it watches the pods of the shipper's own node through the Kubernetes API
// (client-go informers) and keeps, per container, the fields its lines
// carry and the hints its pod's annotations give (sluice.io/...).
//
// Lines never wait on the API: a lookup reads the cache the informers keep,
// and a container that is not (yet) in it is shipped with what its file
// name gives, flagged. A pod deleted a moment ago keeps its metadata for
// delete_grace, as its last lines are read after it is gone.
package kubernetes

import (
	"errors"
	"path"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/config"
)

// Config is the shipper's kubernetes section.
type Config struct {
	// Enabled turns the metadata on: the shipper then needs the API (its
	// service account's token in the pod, or Kubeconfig).
	Enabled bool `yaml:"enabled"`
	// Kubeconfig is a kubeconfig file to reach the API with; empty: the
	// pod's service account (in-cluster).
	Kubeconfig string `yaml:"kubeconfig"`
	// Labels are the pod labels lines carry, as globs over label keys
	// (default ["*"]: all); [] carries none.
	Labels []string `yaml:"labels"`
	// Annotations are the pod annotations lines carry, as globs (default
	// none: annotations can be large, e.g. last-applied-configuration).
	Annotations []string `yaml:"annotations"`
	// NamespaceLabels are the labels of the pod's namespace lines carry,
	// as globs (default none). Any makes the shipper watch namespaces too.
	NamespaceLabels []string `yaml:"namespace_labels"`
	// ServiceLabels name the service of a pod's lines: the first of these
	// labels the pod has (default app.kubernetes.io/name, then app). The
	// sluice.io/service hint wins over them.
	ServiceLabels []string `yaml:"service_labels"`
	// Environments names the environment of a pod's lines by its
	// namespace: the first rule whose glob matches. The
	// sluice.io/environment hint wins over them.
	Environments []EnvironmentRule `yaml:"environments"`
	// DeleteGrace is how long a deleted pod's metadata is kept for the
	// lines read after it is gone (default 5m).
	DeleteGrace time.Duration `yaml:"delete_grace"`
	// SyncTimeout bounds how long the shipper waits at start for the first
	// list of the node's pods before it reads files; lines read before the
	// list arrives are shipped flagged (default 10s).
	SyncTimeout time.Duration `yaml:"sync_timeout"`
	// Hints turns the sluice.io/ annotations on (default true).
	Hints *bool `yaml:"hints"`
}

// EnvironmentRule maps namespaces to an environment.
type EnvironmentRule struct {
	// Namespace is a glob over namespace names, e.g. "*-staging".
	Namespace   string `yaml:"namespace"`
	Environment string `yaml:"environment"`
}

// DefaultConfig is the kubernetes section before the configuration file:
// every default, written once.
func DefaultConfig() Config {
	yes := true
	return Config{
		Labels:        []string{"*"},
		ServiceLabels: []string{"app.kubernetes.io/name", "app"},
		DeleteGrace:   5 * time.Minute,
		SyncTimeout:   10 * time.Second,
		Hints:         &yes,
	}
}

// SetDefaults gives the keys left out their DefaultConfig values (an
// empty list, [], is a value: labels: [] carries none).
func (c *Config) SetDefaults() { config.FillZero(c, DefaultConfig()) }

// HintsOn reports whether hints are read.
func (c *Config) HintsOn() bool { return c.Hints == nil || *c.Hints }

// Validate checks c under key (e.g. "kubernetes").
func (c *Config) Validate(key string) error {
	var errs []error
	for _, list := range []struct {
		name  string
		globs []string
	}{{"labels", c.Labels}, {"annotations", c.Annotations}, {"namespace_labels", c.NamespaceLabels}} {
		for i, g := range list.globs {
			if _, err := path.Match(g, ""); err != nil {
				errs = append(errs, config.Errorf(config.Index(config.Join(key, list.name), i), "%q is not a valid glob; write a label key such as app.kubernetes.io/name, or a glob such as app.kubernetes.io/*", g))
			}
		}
	}
	for i, r := range c.Environments {
		k := config.Index(config.Join(key, "environments"), i)
		if _, err := path.Match(r.Namespace, ""); err != nil || r.Namespace == "" {
			errs = append(errs, config.Errorf(config.Join(k, "namespace"), "%q must be a namespace name or glob, e.g. \"*-prod\"", r.Namespace))
		}
		if r.Environment == "" {
			errs = append(errs, config.Errorf(config.Join(k, "environment"), "is required: the environment of the namespaces matching %q, e.g. production", r.Namespace))
		}
	}
	if c.DeleteGrace < 0 {
		errs = append(errs, config.Errorf(config.Join(key, "delete_grace"), "must not be negative; a deleted pod's last lines are read after it is gone, e.g. 5m"))
	}
	if c.SyncTimeout < 0 {
		errs = append(errs, config.Errorf(config.Join(key, "sync_timeout"), "must not be negative, e.g. 10s"))
	}
	return errors.Join(errs...)
}

// environment returns the environment of namespace ns by the rules.
func (c *Config) environment(ns string) string {
	for _, r := range c.Environments {
		if matchAny([]string{r.Namespace}, ns) {
			return r.Environment
		}
	}
	return ""
}

// matchAny reports whether key matches one of globs, where * also matches
// the / of a prefixed key (app.kubernetes.io/name): both are compared with
// / as |, which keys and namespace names cannot hold.
func matchAny(globs []string, key string) bool {
	key = strings.ReplaceAll(key, "/", "|")
	for _, g := range globs {
		if ok, _ := path.Match(strings.ReplaceAll(g, "/", "|"), key); ok {
			return true
		}
	}
	return false
}
