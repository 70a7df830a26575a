package aggregator

import (
	"context"

	"github.com/sluicelog/sluice/aggregator/deliver"
	"github.com/sluicelog/sluice/aggregator/process"
)

// ECSVersion is the version of the Elastic Common Schema the documents
// follow.
const ECSVersion = process.ECSVersion

// InstalledTemplate is one index template `sluice setup` installed.
type InstalledTemplate = deliver.InstalledTemplate

// InstallTemplate installs the index templates, ILM policies and data
// stream lifecycles of cfg, for `sluice setup` (deliver.InstallTemplate).
func InstallTemplate(ctx context.Context, cfg ElasticsearchConfig) ([]InstalledTemplate, error) {
	return deliver.InstallTemplate(ctx, cfg)
}

// TemplateFields returns the fields of Sluice's index template and their
// types (deliver.TemplateFields).
func TemplateFields() map[string]string { return deliver.TemplateFields() }
