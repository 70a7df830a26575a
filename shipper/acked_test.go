package shipper

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestLineStarts lists the starts of the lines before the acknowledged
// offset: an unterminated last line counts, a line longer than the read
// buffer is one line, and a file replaced at its path is not read.
func TestLineStarts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	long := strings.Repeat("x", 200<<10)
	content := "a\n" + long + "\n\nlast unterminated"
	if err := os.WriteFile(path, []byte(content+"\nnot acknowledged\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	di, _ := statDevIno(fi)
	got, unterminated, err := lineStarts(path, di, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{0, 2, int64(3 + len(long)), int64(4 + len(long))}
	if !slices.Equal(got, want) {
		t.Fatalf("line starts %v, want %v", got, want)
	}
	if unterminated != int64(len("last unterminated")) {
		t.Fatalf("unterminated last line of %d bytes, want %d", unterminated, len("last unterminated"))
	}
	if _, _, err := lineStarts(path, devIno{Dev: di.Dev, Ino: di.Ino + 1}, 2); err == nil || !strings.Contains(err.Error(), "rotated") {
		t.Fatalf("another file at the path: %v, want it not checked", err)
	}
	if _, _, err := lineStarts(path, di, fi.Size()+1); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("acknowledged past the end: %v, want it not checked", err)
	}
}
