package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ocsiproxy/ocsiproxy/xmlconf"
)

// DefaultWatchInterval is how often --watch looks at the configuration
// files.
const DefaultWatchInterval = time.Second

// watchSettle is how long Watch waits, once it has seen a change, for
// the files to stop changing before it reloads, so that a file caught
// half-written is not reloaded; it waits at most watchSettleTries times.
const (
	watchSettle      = 50 * time.Millisecond
	watchSettleTries = 10
)

// Watch reloads the configuration (see [Server.Reload]) whenever the
// configuration file, or a file of one of its <extconf> directories,
// changes, until ctx is done. It looks every interval
// ([DefaultWatchInterval] when interval is 0 or less): it reads the
// files through their path each time, so it sees an in-place write, a
// file replaced by a rename (as editors save), a file added to or
// removed from an <extconf> directory, and the symlink swap of a
// Kubernetes ConfigMap volume (the ..data link renamed to point at a new
// directory) alike. A change is a change of content (or of a file's
// presence): touching a file reloads nothing. A reload that fails keeps
// the old configuration and is written to the error log, by Reload; the
// watch goes on and reloads again at the next change. The <extconf>
// directories watched are those of the configuration last read, so a
// directory a change adds is watched from then on. A change made since
// [New] read the files is seen at the first look.
func (s *Server) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultWatchInterval
	}
	file, dirs, last := s.cfg.File, s.cfg.ExtconfDirs, s.loaded
	if file == xmlconf.ReverseProxyFile {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum := fingerprint(file, dirs)
		if sum == last {
			continue
		}
		sum = settle(ctx, file, dirs, sum)
		// The directories of the new configuration: a change may add
		// or remove an <extconf>. Its fingerprint is taken before the
		// reload reads the files, so that a change made during the
		// reload is seen at the next look (at worst, one reload more).
		if cfg, _ := xmlconf.Load(file); cfg != nil {
			dirs = cfg.ExtconfDirs
		}
		last = fingerprint(file, dirs)
		s.Logs.Infof("watch: the configuration changed, reloading %s", file)
		s.Reload("") // a failure is logged by Reload
	}
}

// settle returns the fingerprint of the files once two looks
// watchSettle apart agree (or after watchSettleTries looks), sum being
// the last one taken.
func settle(ctx context.Context, file string, dirs []string, sum [sha256.Size]byte) [sha256.Size]byte {
	for range watchSettleTries {
		select {
		case <-ctx.Done():
			return sum
		case <-time.After(watchSettle):
		}
		next := fingerprint(file, dirs)
		if next == sum {
			return sum
		}
		sum = next
	}
	return sum
}

// fingerprint returns a digest of what loading file reads: its content,
// and for each of dirs the names and contents of the files whose name
// ends in "conf" (those <extconf> reads). A file or directory that
// cannot be read counts as such, so its appearance is a change too.
func fingerprint(file string, dirs []string) [sha256.Size]byte {
	h := sha256.New()
	addFile(h, file)
	for _, d := range dirs {
		addField(h, "dir", d)
		ents, err := os.ReadDir(d)
		if err != nil {
			addField(h, "error", err.Error())
			continue
		}
		names := make([]string, 0, len(ents))
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), "conf") {
				names = append(names, e.Name())
			}
		}
		slices.Sort(names)
		for _, n := range names {
			addFile(h, filepath.Join(d, n))
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// addFile adds the name and content of the file at path to h, or the
// error of reading it.
func addFile(h hash.Hash, path string) {
	addField(h, "file", path)
	b, err := os.ReadFile(path)
	if err != nil {
		addField(h, "error", err.Error())
		return
	}
	addField(h, "content", string(b))
}

// addField adds a tagged, length-prefixed value to h, so that no two
// sequences of values give the same stream.
func addField(h hash.Hash, tag, v string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(v)))
	h.Write([]byte(tag))
	h.Write(n[:])
	h.Write([]byte(v))
}
