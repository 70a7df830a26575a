package telemetry

// ReloadConfig says when a process reloads its configuration file, besides
// SIGHUP.
type ReloadConfig struct {
	// Watch reloads when the file's content changes, for images without a
	// shell to send SIGHUP from: a Kubernetes ConfigMap volume swaps the
	// file under a symlink, so its directory is watched.
	Watch bool `yaml:"watch"`
}
