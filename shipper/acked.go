package shipper

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// AckedFile is one file of a shipper's registry and the lines of it that
// Kafka acknowledged, for `sluice reconcile`.
type AckedFile struct {
	Path   string
	FileID string
	// Offset is the end of the last line Kafka acknowledged, in order.
	Offset int64
	// Lines are the start offsets of the lines before Offset: each is a
	// document, identified by (node, FileID, offset). Nil when Skipped.
	Lines []int64
	// UnterminatedLen is the length of the last line when it has no
	// newline (shipped after unterminated_line_after), else 0.
	UnterminatedLen int64
	// Skipped says why the lines could not be listed.
	Skipped string
}

// AckedLines lists, for each file in cfg's registry, the lines Kafka
// acknowledged: the starts of the lines before its acknowledged offset,
// read from the file itself, which must still be at its path (the same
// device and inode). It only reads. Lines are listed from the file's start:
// with ignore_older set, a file first found older than that was shipped
// from its end at the time, and its earlier lines are listed too. Files of
// formats cri and docker are skipped: their documents start at the first
// of several partial lines, and so are files of inputs with multiline or a
// line filter.
func AckedLines(cfg Config) ([]AckedFile, error) {
	cfg.SetDefaults()
	entries, err := readRegistryFile(filepath.Join(cfg.Registry, registryName))
	if err != nil {
		entries, err = readRegistryFile(filepath.Join(cfg.Registry, registryBackup))
	}
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", cfg.Registry, err)
	}
	var out []AckedFile
	for _, e := range entries {
		f := AckedFile{Path: e.Path, FileID: e.ID, Offset: e.Offset}
		if in := inputOf(cfg, e.Path); in != nil && in.Format != "" && in.Format != FormatPlain {
			f.Skipped = "format " + in.Format + " is not checked"
		} else if in != nil && (in.Multiline != nil || len(in.IncludeLines)+len(in.ExcludeLines) > 0) {
			f.Skipped = "multiline or include_lines/exclude_lines: documents are not one per line, not checked"
		} else if lines, unterminated, err := lineStarts(e.Path, e.DevIno, e.Offset); err != nil {
			f.Skipped = err.Error()
		} else {
			f.Lines, f.UnterminatedLen = lines, unterminated
		}
		out = append(out, f)
	}
	return out, nil
}

// inputOf returns the configured input whose globs find path, if any.
func inputOf(cfg Config, path string) *InputConfig {
	for i := range cfg.Inputs {
		in := &input{cfg: cfg.Inputs[i]}
		if in.match(path) {
			return &cfg.Inputs[i]
		}
	}
	return nil
}

// lineStarts returns the start offset of every line before end in the file
// at path, which must be the file di, and the length of the last line if it
// ends without a newline.
func lineStarts(path string, di devIno, end int64) (starts []int64, unterminated int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("not checked: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("not checked: %w", err)
	}
	if got, ok := statDevIno(fi); !ok || got != di {
		return nil, 0, errors.New("not checked: another file is at its path now (rotated)")
	}
	if fi.Size() < end {
		return nil, 0, fmt.Errorf("not checked: the file is %d bytes, shorter than its acknowledged offset %d (truncated)", fi.Size(), end)
	}
	r := bufio.NewReaderSize(io.LimitReader(f, end), 64<<10)
	var pos int64
	for pos < end {
		starts = append(starts, pos)
		n, err := skipLine(r)
		pos += n
		if err != nil {
			unterminated = n
			break
		}
	}
	return starts, unterminated, nil
}

// skipLine reads past the next newline and returns how many bytes it read.
func skipLine(r *bufio.Reader) (int64, error) {
	var n int64
	for {
		chunk, err := r.ReadSlice('\n')
		n += int64(len(chunk))
		if err != bufio.ErrBufferFull {
			return n, err
		}
	}
}
