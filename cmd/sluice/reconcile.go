package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/sluicelog/sluice/aggregator"
	"github.com/sluicelog/sluice/internal/event"
	"github.com/sluicelog/sluice/shipper"
)

// reconcileFlags are the flags of `sluice reconcile`.
type reconcileFlags struct {
	aggregator string
	index      string
	timeout    time.Duration
}

// errGaps is what reconcile returns when lines are missing.
var errGaps = errors.New("acknowledged lines are missing")

// fileGap is one file with acknowledged lines neither indexed nor
// dead-lettered.
type fileGap struct {
	path, fileID string
	lines        int     // acknowledged lines
	missing      []int64 // their offsets
}

// reconcileReport is what reconcile found.
type reconcileReport struct {
	files, lines, indexed, deadLettered int
	skipped                             []string // "path: why"
	gaps                                []fileGap
}

// run compares, for each file in the shipper's registry (shipperPath), the
// lines Kafka acknowledged with the documents Elasticsearch holds and the
// records of the dead-letter topic (from the aggregator configuration), by
// document id, and prints the files with gaps.
func (f reconcileFlags) run(shipperPath string, stdout io.Writer) error {
	if f.aggregator == "" {
		return errors.New("-aggregator FILE is required: the aggregator configuration that says where Elasticsearch and the dead-letter topic are")
	}
	scfg, err := loadShipper(shipperPath)
	if err != nil {
		return err
	}
	acfg, err := loadAggregator(f.aggregator)
	if err != nil {
		return fmt.Errorf("%s: %w", f.aggregator, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	rep, err := reconcile(ctx, scfg, acfg, f.index, zap.NewNop())
	if err != nil {
		return err
	}
	rep.print(stdout)
	if len(rep.gaps) > 0 {
		return errGaps
	}
	return nil
}

func reconcile(ctx context.Context, scfg shipper.Config, acfg aggregator.Config, index string, log *zap.Logger) (*reconcileReport, error) {
	files, err := shipper.AckedLines(scfg)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, f := range files {
		for i := range f.Lines {
			ids = append(ids, lineDocID(scfg.Node, f, i))
		}
	}
	indexed, err := aggregator.Indexed(ctx, acfg, index, ids, log)
	if err != nil {
		return nil, err
	}
	dead, err := aggregator.DeadLettered(ctx, acfg, log)
	if err != nil {
		return nil, err
	}
	rep := &reconcileReport{}
	for _, f := range files {
		if f.Skipped != "" {
			rep.skipped = append(rep.skipped, f.Path+": "+f.Skipped)
			continue
		}
		rep.files++
		gap := fileGap{path: f.Path, fileID: f.FileID, lines: len(f.Lines)}
		for i, off := range f.Lines {
			id := lineDocID(scfg.Node, f, i)
			switch {
			case indexed[id]:
				rep.indexed++
			case dead[id]:
				rep.deadLettered++
			default:
				gap.missing = append(gap.missing, off)
			}
		}
		rep.lines += len(f.Lines)
		if len(gap.missing) > 0 {
			rep.gaps = append(rep.gaps, gap)
		}
	}
	return rep, nil
}

// lineDocID is the document id of f's line i.
func lineDocID(node string, f shipper.AckedFile, i int) string {
	// A last line shipped unterminated has an id that covers its length,
	// so that the completed line is a document of its own.
	if i == len(f.Lines)-1 && f.UnterminatedLen > 0 {
		return event.UnterminatedDocID(node, f.FileID, f.Lines[i], int(f.UnterminatedLen))
	}
	return event.DocID(node, f.FileID, f.Lines[i])
}

func (r *reconcileReport) print(w io.Writer) {
	for _, g := range r.gaps {
		offs := make([]string, len(g.missing))
		for i, o := range g.missing {
			offs[i] = fmt.Sprint(o)
		}
		fmt.Fprintf(w, "%s (file id %s): %d of %d acknowledged lines missing, at offsets %s\n",
			g.path, g.fileID, len(g.missing), g.lines, strings.Join(offs, " "))
	}
	for _, s := range r.skipped {
		fmt.Fprintf(w, "skipped %s\n", s)
	}
	fmt.Fprintf(w, "%d files, %d acknowledged lines: %d indexed, %d dead-lettered, %d missing in %d files\n",
		r.files, r.lines, r.indexed, r.deadLettered, r.lines-r.indexed-r.deadLettered, len(r.gaps))
}
