// Command manyfiles writes the many-files benchmark's load: busy files each
// growing at a steady rate and quiet files each getting a line now and
// then, as a node's container logs do. Every file exists (with one line)
// before the first tick. It prints the lines it wrote when it stops, after
// -duration or at SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory to write the files in")
	busy := flag.Int("busy", 1000, "busy files")
	quiet := flag.Int("quiet", 0, "quiet files")
	rate := flag.Float64("rate", 100, "lines per second of each busy file")
	every := flag.Duration("quiet-every", time.Minute, "how often each quiet file gets a line")
	tick := flag.Duration("tick", 10*time.Millisecond, "how often each busy file is written to (its lines due since the last tick in one write)")
	duration := flag.Duration("duration", 2*time.Minute, "how long to write")
	lineBytes := flag.Int("line-bytes", 250, "bytes per line, about")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "manyfiles: -dir is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	open := func(name string) *os.File {
		f, err := os.OpenFile(filepath.Join(*dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, "manyfiles:", err)
			os.Exit(1)
		}
		return f
	}
	pad := strings.Repeat("x", max(0, *lineBytes-190))
	var written int64
	line := func(b []byte, file string, n int64) []byte {
		written++
		return fmt.Appendf(b, `{"@timestamp":"%s","level":"info","service":"%s","msg":"order placed","id":"%s-%d","order_id":"A-%07d","pad":"%s"}`+"\n",
			time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), file, file, n, n%10_000_000, pad)
	}
	busyFiles := make([]*os.File, *busy)
	quietFiles := make([]*os.File, *quiet)
	var buf []byte
	for i := range busyFiles {
		busyFiles[i] = open(fmt.Sprintf("busy-%04d.log", i))
		busyFiles[i].Write(line(buf[:0], fmt.Sprintf("busy-%04d", i), 0))
	}
	for i := range quietFiles {
		quietFiles[i] = open(fmt.Sprintf("quiet-%04d.log", i))
		quietFiles[i].Write(line(buf[:0], fmt.Sprintf("quiet-%04d", i), 0))
	}
	busyDone := make([]int64, *busy)
	quietDone := make([]int64, *quiet)
	start := time.Now()
	t := time.NewTicker(*tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println(written)
			return
		case <-t.C:
		}
		elapsed := time.Since(start)
		due := int64(elapsed.Seconds() * *rate)
		for i, f := range busyFiles {
			buf = buf[:0]
			name := fmt.Sprintf("busy-%04d", i)
			for busyDone[i] < due {
				busyDone[i]++
				buf = line(buf, name, busyDone[i])
			}
			if len(buf) > 0 {
				if _, err := f.Write(buf); err != nil {
					fmt.Fprintln(os.Stderr, "manyfiles:", err)
					os.Exit(1)
				}
			}
		}
		// Quiet file i writes at i/quiet of each period: spread out.
		for i, f := range quietFiles {
			offset := time.Duration(int64(*every) * int64(i) / int64(len(quietFiles)))
			if d := int64((elapsed - offset) / *every); elapsed >= offset && d+1 > quietDone[i] {
				quietDone[i] = d + 1
				f.Write(line(buf[:0], fmt.Sprintf("quiet-%04d", i), quietDone[i]))
			}
		}
	}
}
