package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/sluicelog/sluice/aggregator"
	kibanaobjects "github.com/sluicelog/sluice/deploy/kibana"
	"github.com/sluicelog/sluice/internal/kibana"
	"github.com/sluicelog/sluice/internal/secret"
)

// setupTimeout bounds `sluice setup` as a whole: it is a one-off job that
// should fail visibly rather than hang on an unreachable server.
const setupTimeout = 2 * time.Minute

// dataViewPattern is the index pattern of the data view in
// deploy/kibana/sluice.ndjson.
const dataViewPattern = "logs-*"

// setup installs the index template and, with kibana.url set, the Kibana
// saved objects, for the aggregator config at path.
func setup(cfgPath string, stdout io.Writer) error {
	cfg, err := loadAggregator(cfgPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	return runSetup(ctx, cfg, &http.Client{}, stdout)
}

// runSetup does the work of setup with a loaded, valid config, printing
// what it installed to stdout.
func runSetup(ctx context.Context, cfg aggregator.Config, hc *http.Client, stdout io.Writer) error {
	tpls, err := aggregator.InstallTemplate(ctx, cfg.Elasticsearch)
	if err != nil {
		return fmt.Errorf("elasticsearch: %w", err)
	}
	for _, t := range tpls {
		fmt.Fprintf(stdout, "elasticsearch: installed index template %q for indices %s%s\n", t.Name, t.Pattern, retention(t))
	}
	tpl := tpls[0]
	if !cfg.Kibana.Enabled() {
		fmt.Fprintln(stdout, "kibana: kibana.url is not set; no dashboards imported")
		return nil
	}
	if ok, _ := path.Match(dataViewPattern, strings.ReplaceAll(tpl.Pattern, "*", "x")); !ok {
		fmt.Fprintf(stdout, "kibana: warning: the dashboards read %s, which does not match the indices of elasticsearch.index (%s); edit the data view in Kibana\n",
			dataViewPattern, tpl.Pattern)
	}
	res, err := kibana.New(cfg.Kibana, hc).Import(ctx, kibanaobjects.FileName, kibanaobjects.SavedObjects)
	var ie *kibana.ImportError
	if errors.As(err, &ie) {
		printImported(stdout, ie.Imported)
	}
	if err != nil {
		if kibana.IsUnauthorized(err) {
			err = fmt.Errorf("%w (check kibana.username and kibana.password, or kibana.api_key)", err)
		}
		return fmt.Errorf("kibana %s: %w", secret.RedactURL(cfg.Kibana.URL), err)
	}
	printImported(stdout, res.Objects)
	for _, o := range res.Objects {
		if o.Type == "dashboard" {
			fmt.Fprintf(stdout, "kibana: dashboard at %s/app/dashboards#/view/%s\n", kibanaAppBase(cfg.Kibana), o.ID)
		}
	}
	return nil
}

// retention describes how long a template's data is kept.
func retention(t aggregator.InstalledTemplate) string {
	switch {
	case t.Retention == "":
		return ", kept for ever"
	case t.Policy != "":
		return fmt.Sprintf(", deleted %s after creation (ILM policy %q)", t.Retention, t.Policy)
	default:
		return fmt.Sprintf(", data stream lifecycle keeping %s", t.Retention)
	}
}

func printImported(w io.Writer, objs []kibana.Object) {
	for _, o := range objs {
		fmt.Fprintf(w, "kibana: imported %s %q (id %s)\n", o.Type, o.Title, o.ID)
	}
}

// kibanaAppBase is Kibana's URL in the configured space.
func kibanaAppBase(c kibana.Config) string {
	base := strings.TrimRight(secret.RedactURL(c.URL), "/")
	if c.Space != "" && c.Space != "default" {
		base += "/s/" + c.Space
	}
	return base
}
