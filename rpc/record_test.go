package rpc

import (
	"bytes"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

// frag encodes one fragment: its record mark, then its bytes.
func frag(last bool, p string) []byte {
	h := uint32(len(p))
	if last {
		h |= lastFragment
	}
	return append(words(h), p...)
}

func stream(frags ...[]byte) []byte { return bytes.Join(frags, nil) }

// readAll reads records until an error, copying each.
func readAll(rr *RecordReader) ([]string, error) {
	var recs []string
	for {
		rec, err := rr.Next()
		if err != nil {
			return recs, err
		}
		recs = append(recs, string(rec))
	}
}

func TestRecordReader(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		max      int
		maxFrags int
		want     []string
		err      error
	}{
		{
			name: "one record of one fragment",
			in:   frag(true, "abcd"),
			want: []string{"abcd"},
			err:  io.EOF,
		},
		{
			name: "fragments are joined until the one marked last",
			in:   stream(frag(false, "ab"), frag(false, "c"), frag(true, "def")),
			want: []string{"abcdef"},
			err:  io.EOF,
		},
		{
			name: "empty fragments carry nothing",
			in:   stream(frag(false, ""), frag(false, "ab"), frag(false, ""), frag(true, "")),
			want: []string{"ab"},
			err:  io.EOF,
		},
		{
			name: "an empty record",
			in:   frag(true, ""),
			want: []string{""},
			err:  io.EOF,
		},
		{
			name: "pipelined records come out one by one",
			in:   stream(frag(true, "one"), frag(false, "tw"), frag(true, "o"), frag(true, "three")),
			want: []string{"one", "two", "three"},
			err:  io.EOF,
		},
		{
			name: "a stream that ends between records ends with io.EOF",
			in:   nil,
			err:  io.EOF,
		},
		{
			name: "a record of exactly the maximum",
			in:   stream(frag(false, "12345"), frag(true, "67890")),
			max:  10,
			want: []string{"1234567890"},
			err:  io.EOF,
		},
		{
			name: "the maximum counts all fragments together",
			in:   stream(frag(false, "123456"), frag(true, "789012")),
			max:  10,
			err:  ErrRecordTooLarge,
		},
		{
			name: "one fragment over the maximum",
			in:   frag(true, "12345678901"),
			max:  10,
			err:  ErrRecordTooLarge,
		},
		{
			name: "a later record over the maximum, after a good one",
			in:   stream(frag(true, "ok"), frag(true, "12345678901")),
			max:  10,
			want: []string{"ok"},
			err:  ErrRecordTooLarge,
		},
		{
			name: "a header claiming 2 GB under a small maximum",
			in:   words(lastFragment | 0x7fffffff),
			max:  10,
			err:  ErrRecordTooLarge,
		},
		{
			name:     "at most MaxFragments fragments",
			in:       stream(frag(false, "a"), frag(false, "b"), frag(false, "c"), frag(true, "d")),
			maxFrags: 3,
			err:      ErrTooManyFrags,
		},
		{
			name:     "exactly MaxFragments fragments",
			in:       stream(frag(false, "a"), frag(false, "b"), frag(true, "c")),
			maxFrags: 3,
			want:     []string{"abc"},
			err:      io.EOF,
		},
		{
			name:     "empty fragments count too",
			in:       bytes.Repeat(frag(false, ""), 5),
			maxFrags: 4,
			err:      ErrTooManyFrags,
		},
		{
			name: "a stream that ends inside a record mark",
			in:   []byte{0x80, 0},
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "a stream that ends inside a fragment",
			in:   frag(true, "abcd")[:6],
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "a stream that ends after a fragment not marked last",
			in:   frag(false, "abcd"),
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "a stream that ends inside the second fragment's mark",
			in:   append(frag(false, "abcd"), 0x80),
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "a stream that ends inside the next record's mark",
			in:   append(frag(true, "abcd"), 0x80, 0, 0),
			want: []string{"abcd"},
			err:  io.ErrUnexpectedEOF,
		},
		{
			name: "a record larger than the read chunk",
			in:   frag(true, strings.Repeat("x", 3*readChunk+5)),
			max:  4 * readChunk,
			want: []string{strings.Repeat("x", 3*readChunk+5)},
			err:  io.EOF,
		},
	}
	for _, tt := range tests {
		// Each case runs over a reader that returns everything at once and
		// over one that returns a byte at a time.
		for _, slow := range []bool{false, true} {
			name := tt.name
			if slow {
				name += " (byte by byte)"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = bytes.NewReader(tt.in)
				if slow {
					r = iotest.OneByteReader(r)
				}
				max := tt.max
				if max == 0 {
					max = 1 << 20
				}
				rr := NewRecordReader(r, max)
				if tt.maxFrags != 0 {
					rr.MaxFragments = tt.maxFrags
				}
				got, err := readAll(rr)
				if !errors.Is(err, tt.err) {
					t.Errorf("err = %v, want %v", err, tt.err)
				}
				if len(got) != len(tt.want) {
					t.Fatalf("got %d records %q, want %d", len(got), got, len(tt.want))
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Errorf("record %d = %.40q, want %.40q", i, got[i], tt.want[i])
					}
				}
			})
		}
	}
}

// Started fires once per record whose first mark has arrived without the
// rest of the record, so that the server switches from the idle to the
// read timeout when a read could stall, and only then.
func TestRecordReaderStarted(t *testing.T) {
	in := stream(frag(false, "a"), frag(true, "b"), frag(true, "c"))
	for _, tt := range []struct {
		name string
		r    io.Reader
		want [2]int // Started calls after the first and second records
	}{
		// The first record has two fragments: the first alone is no
		// whole record. The second is read from the buffer.
		{"all at once", bytes.NewReader(in), [2]int{1, 1}},
		{"a byte at a time", iotest.OneByteReader(bytes.NewReader(in)), [2]int{1, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rr := NewRecordReader(tt.r, 100)
			started := 0
			rr.Started = func() { started++ }
			for i, want := range tt.want {
				if _, err := rr.Next(); err != nil || started != want {
					t.Fatalf("record %d: err %v, Started called %d times, want %d", i+1, err, started, want)
				}
			}
			if _, err := rr.Next(); err != io.EOF || started != tt.want[1] {
				t.Errorf("at the end: err %v, Started called %d times, want %d", err, started, tt.want[1])
			}
		})
	}
	rr := NewRecordReader(bytes.NewReader(in), 100)
	if _, err := rr.Next(); err != nil || !rr.Buffered() {
		t.Errorf("Buffered = false with the next record in the buffer (err %v)", err)
	}
}

// allocatedBytes reports the bytes f allocates, averaged over n runs.
func allocatedBytes(n int, f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// A header may claim up to 2 GB; memory must grow only with the bytes that
// actually arrive, or a few small packets could make the server allocate
// gigabytes.
func TestRecordReaderMemoryFollowsArrivals(t *testing.T) {
	for _, claim := range []uint32{0x7fffffff, lastFragment | 0x7fffffff, 1 << 30} {
		in := append(words(claim), "only a few bytes"...)
		per := allocatedBytes(50, func() {
			rr := NewRecordReader(bytes.NewReader(in), math.MaxInt32)
			if _, err := rr.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
		})
		t.Logf("claim %#x, %d bytes sent: %d bytes allocated", claim, len(in), per)
		if per > 16<<10 {
			t.Errorf("claim %#x: %d bytes allocated for %d bytes sent, want a few KB", claim, per, len(in))
		}
	}

	// With 256 KiB arriving of a 2 GB claim, the buffer holds about what
	// arrived. The total allocated over the growth steps is larger (each
	// step copies into a new array) but still a constant multiple.
	const arrived = 256 << 10
	in := append(words(0x7fffffff), make([]byte, arrived)...)
	var rr *RecordReader
	per := allocatedBytes(5, func() {
		rr = NewRecordReader(bytes.NewReader(in), math.MaxInt32)
		if _, err := rr.Next(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Logf("claim 2 GB, %d bytes sent: buffer of %d bytes, %d bytes allocated in all", arrived, cap(rr.buf), per)
	if cap(rr.buf) > 2*arrived+readChunk {
		t.Errorf("buffer of %d bytes for %d bytes sent", cap(rr.buf), arrived)
	}
	if per > 8*arrived {
		t.Errorf("%d bytes allocated for %d bytes sent", per, arrived)
	}
}

// The buffer of one large record is not pinned by an idle connection.
func TestRecordReaderReleasesLargeBuffers(t *testing.T) {
	big := strings.Repeat("x", 2*DefaultKeep)
	rr := NewRecordReader(bytes.NewReader(stream(frag(true, big), frag(true, "small"))), 4*DefaultKeep)
	if rec, err := rr.Next(); err != nil || len(rec) != len(big) {
		t.Fatalf("big record: %d bytes, %v", len(rec), err)
	}
	if rec, err := rr.Next(); err != nil || string(rec) != "small" {
		t.Fatalf("small record: %q, %v", rec, err)
	}
	if cap(rr.buf) > DefaultKeep {
		t.Errorf("buffer capacity %d kept after a small record, want at most %d", cap(rr.buf), DefaultKeep)
	}
}

// Errors other than EOF from the stream come back as they are.
func TestRecordReaderPassesErrors(t *testing.T) {
	boom := errors.New("boom")
	rr := NewRecordReader(io.MultiReader(bytes.NewReader(frag(false, "ab")), iotest.ErrReader(boom)), 100)
	if _, err := rr.Next(); !errors.Is(err, boom) {
		t.Errorf("err = %v, want %v", err, boom)
	}
}

func TestMarkRecord(t *testing.T) {
	b := MarkRecord(append(make([]byte, RecordHeaderLen), "abcde"...))
	if want := hexBytes(t, "80000005 6162636465"); !bytes.Equal(b, want) {
		t.Errorf("MarkRecord: %x, want %x", b, want)
	}
	var w bytes.Buffer
	if err := WriteRecord(&w, []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if want := hexBytes(t, "80000003 78797a"); !bytes.Equal(w.Bytes(), want) {
		t.Errorf("WriteRecord: %x, want %x", w.Bytes(), want)
	}
	rec, err := NewRecordReader(&w, 10).Next()
	if err != nil || string(rec) != "xyz" {
		t.Errorf("read back %q, %v", rec, err)
	}
}
