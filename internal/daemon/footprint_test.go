package daemon

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// statusKB reads a "Name: N kB" line of /proc/self/status.
func statusKB(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", name)
	return 0
}

// Trimming drops the binary's clean pages from the mapping; the test
// binary goes on running the code it dropped.
func TestTrimFootprintDropsBinaryPages(t *testing.T) {
	before := statusKB(t, "RssFile")
	trimFootprint()
	after := statusKB(t, "RssFile")
	t.Logf("RssFile %d kB before, %d kB after", before, after)
	if after >= before {
		t.Errorf("RssFile %d kB after trimming, not below %d kB", after, before)
	}
}

// After the trim, the binary's pages that the daemon does not map are
// out of the page cache, and a page read again comes back alone: not
// with the 64 KiB around it that the kernel would map from the cache, nor
// the read-ahead around it.
func TestTrimmedBinaryComesBackAPageAtATime(t *testing.T) {
	var fs unix.Statfs_t
	if err := unix.Statfs("/proc/self/exe", &fs); err != nil || fs.Type == unix.TMPFS_MAGIC {
		t.Skip("the test binary is on tmpfs, whose pages cannot be dropped")
	}
	before := cachedPages(t)
	trimFootprint()
	after := cachedPages(t)
	cached := func(v []bool) (n int) {
		for _, c := range v {
			if c {
				n++
			}
		}
		return n
	}
	t.Logf("binary's pages in the page cache: %d of %d before the trim, %d after", cached(before), len(before), cached(after))
	// The first 64 KiB of the binary's read-only mappings that the cache
	// no longer holds. Pages in a large folio of the cache that holds one
	// still mapped stay cached, so not every window is dropped.
	window, off := uintptr(0), 0
	for _, r := range readOnlyRanges(t) {
		for w := (r.start + 64<<10 - 1) &^ (64<<10 - 1); w+64<<10 <= r.end && window == 0; w += 64 << 10 {
			o := int(r.offset+uint64(w-r.start)) / 4096
			if o+16 <= len(after) && cached(after[o:o+16]) == 0 && mappedPages(t, w, 16) == 0 {
				window, off = w, o
			}
		}
	}
	if window == 0 {
		t.Fatal("the page cache still holds some of every 64 KiB of the binary after the trim")
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		t.Skip(err)
	}
	defer mem.Close()
	if _, err := mem.ReadAt(make([]byte, 1), int64(window+8*4096)); err != nil {
		t.Fatal(err)
	}
	mapped, read := mappedPages(t, window, 16), cached(cachedPages(t)[off:off+16])
	t.Logf("one page read at %#x: %d of the 16 around it mapped, %d read into the cache", window+8*4096, mapped, read)
	// The file system may read a few pages at once (a folio), which the
	// mapping does not take.
	if mapped != 1 || read > 8 {
		t.Errorf("reading one page mapped %d and read %d: want 1 and at most 8", mapped, read)
	}
}

// fileRange is a mapping of the binary: addresses and file offset.
type fileRange struct {
	start, end uintptr
	offset     uint64
}

// readOnlyRanges lists the binary's read-only private mappings, the
// ones the trim drops.
func readOnlyRanges(t *testing.T) []fileRange {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skip(err)
	}
	var rs []fileRange
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || f[5] != exe || f[1][1] != '-' {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		o, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 == nil && err2 == nil && err3 == nil {
			rs = append(rs, fileRange{uintptr(s), uintptr(e), o})
		}
	}
	return rs
}

// cachedPages reports which of the binary's pages the page cache holds
// (mincore on a mapping of its own, which faults nothing in).
func cachedPages(t *testing.T) []bool {
	t.Helper()
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Munmap(b) }()
	v := make([]byte, (len(b)+4095)/4096)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&v[0]))); errno != 0 {
		t.Fatal(errno)
	}
	cached := make([]bool, len(v))
	for i, x := range v {
		cached[i] = x&1 != 0
	}
	return cached
}

// mappedPages counts the pages of the n from addr that this process maps
// (/proc/self/pagemap's present bit).
func mappedPages(t *testing.T, addr uintptr, n int) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	b := make([]byte, 8*n)
	if _, err := f.ReadAt(b, int64(addr/4096*8)); err != nil {
		t.Fatal(err)
	}
	present := 0
	for i := range n {
		if binary.LittleEndian.Uint64(b[8*i:])&(1<<63) != 0 {
			present++
		}
	}
	return present
}
