// Package deploy tests the container image the repository's Dockerfile
// builds: the Dockerfile itself (scratch, non-root numeric user, static
// build, CA roots), the static binary its build command makes, and, where
// podman or buildah is installed, the image built from the Dockerfile's
// final stage, run with `sluice version` and `sluice check`.
package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int    // where it starts
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
}

// stage is a FROM and the instructions after it.
type stage struct {
	from         string // image
	name         string // AS name
	instructions []instruction
}

// parseDockerfile splits a Dockerfile into stages. It knows what this
// Dockerfile uses: comments, parser directives, backslash continuations.
func parseDockerfile(data []byte) ([]stage, error) {
	var stages []stage
	var cur strings.Builder
	start := 0
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := stage{}
			if len(f) > 0 {
				st.from = f[0]
			}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			return nil
		}
		if len(stages) == 0 {
			if in.cmd == "ARG" {
				return nil // global ARGs before the first FROM
			}
			return fmt.Errorf("line %d: %s before FROM", in.line, in.cmd)
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return stages, sc.Err()
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	stages, err := parseDockerfile(data)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and the final one", len(stages))
	}
	return stages
}

// find returns the instructions of st with command cmd.
func (st stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range st.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// copyFrom is a COPY --from=<stage> src dst of the final stage.
type copyFrom struct{ from, src, dst string }

func (st stage) copies(t *testing.T) []copyFrom {
	t.Helper()
	var out []copyFrom
	for _, in := range st.find("COPY") {
		out = append(out, parseCopy(t, in))
	}
	return out
}

func parseCopy(t *testing.T, in instruction) copyFrom {
	t.Helper()
	var c copyFrom
	var rest []string
	for _, a := range strings.Fields(in.args) {
		if v, ok := strings.CutPrefix(a, "--from="); ok {
			c.from = v
		} else if !strings.HasPrefix(a, "--") {
			rest = append(rest, a)
		}
	}
	if len(rest) != 2 {
		t.Fatalf("Dockerfile line %d: COPY %s: want one source and a destination", in.line, in.args)
	}
	c.src, c.dst = rest[0], rest[1]
	return c
}

// goBuild is the build stage's `go build` command: its environment and
// its arguments.
type goBuild struct {
	env    []string // NAME=value as written
	args   []string // after "go build"
	output string   // the -o path
}

func buildCommand(t *testing.T, build stage) goBuild {
	t.Helper()
	for _, in := range build.find("RUN") {
		if !strings.Contains(in.args, "go build") {
			continue
		}
		words, err := shellWords(in.args)
		if err != nil {
			t.Fatalf("Dockerfile line %d: %v", in.line, err)
		}
		var gb goBuild
		i := 0
		for ; i < len(words) && strings.HasPrefix(words[i], "--mount="); i++ {
		}
		for ; i < len(words) && strings.Contains(words[i], "="); i++ {
			gb.env = append(gb.env, words[i])
		}
		if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
			t.Fatalf("Dockerfile line %d: expected [--mount=...] [VAR=value...] go build ..., got %q", in.line, in.args)
		}
		gb.args = words[i+2:]
		for j, a := range gb.args {
			if a == "-o" && j+1 < len(gb.args) {
				gb.output = gb.args[j+1]
			}
		}
		return gb
	}
	t.Fatal("the build stage has no RUN ... go build")
	return goBuild{}
}

// shellWords splits a command line at spaces, honouring double quotes;
// enough for the Dockerfile's RUN line.
func shellWords(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			inWord = true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated double quote")
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	final, build := stages[len(stages)-1], stages[0]
	if final.from != "scratch" {
		t.Errorf("final stage is FROM %s, want scratch", final.from)
	}
	users := final.find("USER")
	if len(users) == 0 {
		t.Fatal("the final stage has no USER: the image would run as root")
	}
	user := users[len(users)-1].args
	uid, gid, _ := strings.Cut(user, ":")
	u, errU := strconv.Atoi(uid)
	_, errG := strconv.Atoi(gid)
	if errU != nil || (gid != "" && errG != nil) {
		t.Errorf("USER %s: want numeric uid:gid (a scratch image has no /etc/passwd, and Kubernetes' runAsNonRoot needs a number)", user)
	} else if u == 0 {
		t.Errorf("USER %s: want a non-root uid", user)
	}
	entry := final.find("ENTRYPOINT")
	if len(entry) != 1 || entry[0].args != `["/sluice"]` {
		t.Errorf("ENTRYPOINT %v, want [\"/sluice\"] (exec form: scratch has no shell)", entry)
	}
	gb := buildCommand(t, build)
	if !slices.Contains(gb.env, "CGO_ENABLED=0") {
		t.Errorf("go build runs with %v, want CGO_ENABLED=0 (a scratch image has no libc)", gb.env)
	}
	var haveBinary, haveCerts bool
	for _, c := range final.copies(t) {
		if c.from != build.name {
			t.Errorf("COPY --from=%s: want files from the build stage %q only", c.from, build.name)
		}
		switch {
		case c.src == gb.output && c.dst == "/sluice":
			haveBinary = true
		case c.src == "/etc/ssl/certs/ca-certificates.crt" && c.dst == c.src:
			haveCerts = true
		}
	}
	if !haveBinary {
		t.Errorf("the final stage does not copy the build output %s to /sluice", gb.output)
	}
	if !haveCerts {
		t.Error("the final stage does not copy /etc/ssl/certs/ca-certificates.crt: https:// addresses could not be verified")
	}
	if exp := final.find("EXPOSE"); len(exp) != 1 || exp[0].args != "9600 9601" {
		t.Errorf("EXPOSE %v, want 9600 9601 (shipper and aggregator http.listen ports)", exp)
	}
}

// imageVersion is the version stamped into the binaries these tests build.
const imageVersion = "image-test"

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	tmpRoot    string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-image-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// staticBinary builds sluice with the Dockerfile's own go build command
// (output redirected, VERSION, TARGETOS and TARGETARCH set for this
// machine), once per test run.
func staticBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		gb := buildCommand(t, readDockerfile(t)[0])
		binaryPath = filepath.Join(tmpRoot, "sluice")
		vars := map[string]string{"VERSION": imageVersion, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH}
		expand := func(s string) string {
			return os.Expand(s, func(k string) string { return vars[k] })
		}
		args := []string{"build"}
		for _, a := range gb.args {
			if a == gb.output {
				a = binaryPath
			}
			args = append(args, expand(a))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = ".."
		cmd.Env = os.Environ()
		for _, e := range gb.env {
			cmd.Env = append(cmd.Env, expand(e))
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

func TestBinaryIsStatic(t *testing.T) {
	bin := staticBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("program header %v: the binary needs a dynamic loader, which a scratch image lacks", p.Type)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("imported libraries %v (%v), want none", libs, err)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s was not applied")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "sluice "+imageVersion {
		t.Errorf("sluice version: %q, %v; want \"sluice %s\" (-X main.version)", out, err, imageVersion)
	}
}

// engine builds and runs images with podman or buildah.
type engine interface {
	build(ctx context.Context, dir, tag string) error
	// run runs sluice with args in a container of tag.
	run(ctx context.Context, tag string, opts runOptions, args ...string) (string, error)
	// files lists the paths in the image's filesystem.
	files(ctx context.Context, tag string) ([]string, error)
	// config returns the image's user and entrypoint.
	config(ctx context.Context, tag string) (string, error)
}

// runOptions are a container's bind mounts (host path -> container path,
// read-only) and environment (NAME=value).
type runOptions struct {
	mounts map[string]string
	env    []string
}

func (o runOptions) flags() []string {
	var f []string
	for host, ctr := range o.mounts {
		f = append(f, "-v", host+":"+ctr+":ro")
	}
	for _, e := range o.env {
		f = append(f, "-e", e)
	}
	return f
}

// storageFlags keep the test's images in a store of their own, with the
// vfs driver, which works without overlay support in nested containers.
func storageFlags(dir string) []string {
	return []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot"), "--storage-driver", "vfs"}
}

func command(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

type podman struct{ global []string }

func newPodman(dir string) *podman {
	g := append(storageFlags(dir), "--cgroup-manager", "cgroupfs", "--events-backend", "file")
	// crun refuses hybrid cgroup v1/v2 hosts (as in many CI containers);
	// runc runs there.
	if _, err := exec.LookPath("runc"); err == nil {
		g = append(g, "--runtime", "runc")
	}
	return &podman{global: g}
}

func (p *podman) cmd(ctx context.Context, args ...string) (string, error) {
	return command(ctx, "podman", append(slices.Clone(p.global), args...)...)
}

func (p *podman) build(ctx context.Context, dir, tag string) error {
	_, err := p.cmd(ctx, "build", "--isolation", "chroot", "-t", tag, dir)
	return err
}

func (p *podman) run(ctx context.Context, tag string, opts runOptions, args ...string) (string, error) {
	// Limits at or below the inherited ones: raising them needs
	// CAP_SYS_RESOURCE, which unprivileged CI containers lack.
	a := append([]string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}, opts.flags()...)
	return p.cmd(ctx, append(append(a, tag), args...)...)
}

func (p *podman) files(ctx context.Context, tag string) ([]string, error) {
	id, err := p.cmd(ctx, "create", tag)
	if err != nil {
		return nil, err
	}
	id = strings.TrimSpace(id)
	defer func() { _, _ = p.cmd(context.Background(), "rm", id) }()
	out := filepath.Join(tmpRoot, "export.tar")
	if _, err := p.cmd(ctx, "export", "-o", out, id); err != nil {
		return nil, err
	}
	return tarFiles(out)
}

func (p *podman) config(ctx context.Context, tag string) (string, error) {
	out, err := p.cmd(ctx, "image", "inspect", "--format", "{{.Config.User}} {{.Config.Entrypoint}}", tag)
	return strings.TrimSpace(out), err
}

type buildah struct{ global []string }

func (b *buildah) cmd(ctx context.Context, args ...string) (string, error) {
	return command(ctx, "buildah", append(slices.Clone(b.global), args...)...)
}

func (b *buildah) build(ctx context.Context, dir, tag string) error {
	_, err := b.cmd(ctx, "bud", "--isolation", "chroot", "-t", tag, dir)
	return err
}

func (b *buildah) run(ctx context.Context, tag string, opts runOptions, args ...string) (string, error) {
	ctr, err := b.cmd(ctx, "from", tag)
	if err != nil {
		return "", err
	}
	ctr = strings.TrimSpace(ctr)
	defer func() { _, _ = b.cmd(context.Background(), "rm", ctr) }()
	a := append([]string{"run", "--isolation", "chroot"}, opts.flags()...)
	// buildah run does not apply the entrypoint; it does apply USER.
	return b.cmd(ctx, append(append(a, ctr, "--", "/sluice"), args...)...)
}

func (b *buildah) files(ctx context.Context, tag string) ([]string, error) {
	out := filepath.Join(tmpRoot, "image.tar")
	if _, err := b.cmd(ctx, "push", tag, "docker-archive:"+out); err != nil {
		return nil, err
	}
	return dockerArchiveFiles(out)
}

func (b *buildah) config(ctx context.Context, tag string) (string, error) {
	out, err := b.cmd(ctx, "inspect", "--type", "image", "--format", "{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}}", tag)
	return strings.TrimSpace(out), err
}

// tarFiles lists the regular files of a tar archive, as absolute paths.
func tarFiles(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return regularFiles(tar.NewReader(f))
}

// regularFiles lists the regular files tr holds, as absolute paths.
func regularFiles(tr *tar.Reader) ([]string, error) {
	var files []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, path.Clean("/"+h.Name))
		}
	}
}

// dockerArchiveFiles lists the regular files of the layers of a
// docker-archive tarball.
func dockerArchiveFiles(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var files []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || !strings.HasSuffix(h.Name, ".tar") {
			continue
		}
		layer, err := regularFiles(tar.NewReader(tr))
		if err != nil {
			return nil, err
		}
		files = append(files, layer...)
	}
}

// findEngine returns podman, else buildah, else skips the test naming what
// is missing. SLUICE_IMAGE_ENGINE=podman or buildah picks one.
func findEngine(t *testing.T, dir string) (string, engine) {
	t.Helper()
	candidates := []string{"podman", "buildah"}
	if e := os.Getenv("SLUICE_IMAGE_ENGINE"); e != "" {
		if !slices.Contains(candidates, e) {
			t.Fatalf("SLUICE_IMAGE_ENGINE=%s: want podman or buildah", e)
		}
		candidates = []string{e}
	}
	for _, name := range candidates {
		if _, err := exec.LookPath(name); err != nil {
			continue
		}
		if name == "podman" {
			return name, newPodman(dir)
		}
		return name, &buildah{global: storageFlags(dir)}
	}
	t.Skipf("%s not installed, so the image is not built and run here "+
		"(Debian: apt-get install -y podman runc); TestDockerfile and TestBinaryIsStatic still ran", strings.Join(candidates, " or "))
	return "", nil
}

// imageContext writes a build context for the Dockerfile's final stage:
// its instructions as they are, with each COPY --from=<build stage> taking
// the file from the context instead: the binary built by the stage's own
// go build command, and this machine's CA bundle in place of the build
// image's (both Debian's). Building the whole Dockerfile would need the
// golang image from a registry.
func imageContext(t *testing.T) string {
	t.Helper()
	stages := readDockerfile(t)
	build, final := stages[0], stages[len(stages)-1]
	gb := buildCommand(t, build)
	dir := filepath.Join(t.TempDir(), "context")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var cf strings.Builder
	cf.WriteString("FROM " + final.from + "\n")
	for _, in := range final.instructions {
		if in.cmd != "COPY" {
			fmt.Fprintf(&cf, "%s %s\n", in.cmd, in.args)
			continue
		}
		c := parseCopy(t, in)
		if c.from != build.name {
			t.Fatalf("Dockerfile line %d: COPY from %q; this test provides files of the build stage only", in.line, c.from)
		}
		src := c.src
		if c.src == gb.output {
			src = staticBinary(t)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("COPY %s: %v", c.src, err)
		}
		name := path.Base(c.src)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cf, "COPY %s %s\n", name, c.dst)
	}
	if err := os.WriteFile(filepath.Join(dir, "Containerfile"), []byte(cf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("Containerfile:\n%s", cf.String())
	return dir
}

func TestImage(t *testing.T) {
	store := filepath.Join(tmpRoot, "store")
	name, eng := findEngine(t, store)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := imageContext(t)
	const tag = "localhost/sluice-image-test:latest"
	start := time.Now()
	if err := eng.build(ctx, dir, tag); err != nil {
		t.Fatalf("%s build: %v", name, err)
	}
	t.Logf("%s built the image in %s", name, time.Since(start).Round(time.Millisecond))

	files, err := eng.files(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if want := []string{"/etc/ssl/certs/ca-certificates.crt", "/sluice"}; !slices.Equal(files, want) {
		t.Errorf("image files %v, want exactly %v", files, want)
	}
	if cfg, err := eng.config(ctx, tag); err != nil || cfg != "65532:65532 [/sluice]" {
		t.Errorf("image user and entrypoint %q (%v), want \"65532:65532 [/sluice]\"", cfg, err)
	}

	start = time.Now()
	out, err := eng.run(ctx, tag, runOptions{}, "version")
	if err != nil || !strings.Contains(out, "sluice "+imageVersion) {
		t.Fatalf("sluice version in the container: %q, %v", out, err)
	}
	t.Logf("%s ran sluice version in %s", name, time.Since(start).Round(time.Millisecond))

	for _, cfg := range []struct {
		file, kind string
		env        []string
	}{
		{"local/aggregator.yaml", "aggregator", nil},
		{"local/shipper.yaml", "shipper", []string{"SLUICE_DEMO_DIR=/var/lib/sluice-demo"}},
	} {
		abs, err := filepath.Abs(cfg.file)
		if err != nil {
			t.Fatal(err)
		}
		out, err := eng.run(ctx, tag, runOptions{mounts: map[string]string{abs: "/etc/sluice/config.yaml"}, env: cfg.env},
			"check", "-c", "/etc/sluice/config.yaml")
		if err != nil || !strings.Contains(out, "/etc/sluice/config.yaml: valid "+cfg.kind+" configuration") {
			t.Errorf("sluice check %s in the container: %q, %v", cfg.file, out, err)
		}
	}

	// The process runs as 65532, not root: a root-only file is unreadable.
	secret := filepath.Join(t.TempDir(), "root-only.yaml")
	data, err := os.ReadFile("local/aggregator.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		out, err = eng.run(ctx, tag, runOptions{mounts: map[string]string{secret: "/etc/sluice/config.yaml"}}, "check", "-c", "/etc/sluice/config.yaml")
		if err == nil || !strings.Contains(out, "permission denied") {
			t.Errorf("sluice check of a root-only file: %q, %v; want permission denied (the container must not run as root)", out, err)
		}
	}
}
