package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	goxdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/portmapd/portmapd/pmap"
)

func TestFormatRoundTrip(t *testing.T) {
	many := varied(10000)
	long := strings.Repeat("x", MaxString)
	for _, tc := range []struct {
		name string
		ms   []pmap.Mapping
		boot string
	}{
		{"empty table", nil, ""},
		{"one row", sample[:1], "4df74def-ac61-40bb-97ca-01a2db6e2d81"},
		{"every netid kind", sample, "b"},
		{"empty strings survive", []pmap.Mapping{{Prog: 1, Vers: 2}}, ""},
		{"strings of exactly MaxString", []pmap.Mapping{{Prog: 1, Vers: 1, Netid: long, Addr: long, Owner: long}}, ""},
		{"lengths needing each padding", []pmap.Mapping{
			{Prog: 1, Netid: "u", Addr: "ab", Owner: "abc"}, {Prog: 2, Netid: "abcd", Addr: "abcde"},
		}, "x"},
		{"extreme numbers", []pmap.Mapping{{Prog: ^uint32(0), Vers: ^uint32(0), Netid: "tcp"}}, ""},
		{"ten thousand rows", many, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := encodeState(tc.ms, tc.boot, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(data)%4 != 0 {
				t.Errorf("file of %d bytes is not XDR-aligned", len(data))
			}
			if want := goXDREncoding(t, tc.ms, tc.boot); !bytes.Equal(data, want) {
				t.Errorf("encoding differs from go-xdr's of the format's structure")
			}
			got, boot, _, err := decodeState(data)
			if err != nil {
				t.Fatal(err)
			}
			if boot != tc.boot {
				t.Errorf("boot id %q, want %q", boot, tc.boot)
			}
			if len(got) != len(tc.ms) || (len(got) > 0 && !slices.Equal(got, tc.ms)) {
				t.Errorf("round trip changed the table:\n got %v\nwant %v", got, tc.ms)
			}
		})
	}
}

// xdrState mirrors pmapd_state for go-xdr, which encodes exported fields
// in declaration order: the oracle for encodeState.
type xdrState struct {
	Magic   [8]byte
	Version uint32
	BootID  string
	Seq     uint64
	Entries []xdrEntry
}

// goXDREncoding is the file go-xdr's reflection encoder makes of ms.
func goXDREncoding(t *testing.T, ms []pmap.Mapping, bootID string) []byte {
	t.Helper()
	st := xdrState{Version: version, BootID: bootID, Entries: make([]xdrEntry, len(ms))}
	copy(st.Magic[:], magic)
	for i, m := range ms {
		st.Entries[i] = xdrEntry(m)
	}
	var buf bytes.Buffer
	if _, err := goxdr.Marshal(&buf, &st); err != nil {
		t.Fatal(err)
	}
	return binary.BigEndian.AppendUint32(buf.Bytes(), crc32.Checksum(buf.Bytes(), castagnoli()))
}

// The documented layout, byte by byte, so that a change to the Go types
// cannot silently change the format.
func TestFormatMatchesDocumentation(t *testing.T) {
	m := pmap.Mapping{Prog: 100003, Vers: 3, Netid: "tcp", Addr: "0.0.0.0.8.1", Owner: "superuser"}
	want := header(2, "boot").u32(0).u32(7).u32(1).
		u32(100003).u32(3).str("tcp").str("0.0.0.0.8.1").str("superuser").seal()
	got, err := encodeState([]pmap.Mapping{m}, "boot", 7)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding differs from the documented format:\n got % x\nwant % x", got, want)
	}
	if !bytes.HasPrefix(got, []byte("portmapd\x00\x00\x00\x02")) {
		t.Errorf("file does not start with magic and version 2: % x", got[:12])
	}
	// A version 1 file, written before the journal, reads as seq 0.
	v1 := header(1, "boot").u32(1).entry(m).seal()
	if ms, boot, seq, err := decodeState(v1); err != nil || boot != "boot" || seq != 0 || !slices.Equal(ms, []pmap.Mapping{m}) {
		t.Errorf("version 1 file: %v %q %d %v", ms, boot, seq, err)
	}
}

func TestEncodeRefusesWhatDecodeWouldRefuse(t *testing.T) {
	long := strings.Repeat("x", MaxString+1)
	for _, tc := range []struct {
		name string
		ms   []pmap.Mapping
		boot string
	}{
		{"netid longer than MaxString", []pmap.Mapping{{Netid: long}}, ""},
		{"addr longer than MaxString", []pmap.Mapping{{Addr: long}}, ""},
		{"owner longer than MaxString", []pmap.Mapping{{Owner: long}}, ""},
		{"more than MaxMappings rows", make([]pmap.Mapping, MaxMappings+1), ""},
		{"boot id longer than 64 bytes", nil, strings.Repeat("b", 65)},
		{"file beyond MaxFileSize", func() []pmap.Mapping {
			ms := make([]pmap.Mapping, MaxMappings)
			for i := range ms {
				ms[i].Addr = strings.Repeat("a", MaxString)
			}
			return ms
		}(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := encodeState(tc.ms, tc.boot, 0); !errors.Is(err, ErrTooLarge) {
				t.Fatalf("err = %v, want ErrTooLarge", err)
			}
		})
	}
}

// The registry holds netids of up to 64 bytes and addresses of up to 256
// (pmap.MaxNetidLen, pmap.MaxAddrLen); a full table of those must save.
func TestLargestRegistryTableFits(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes 23 MB")
	}
	ms := make([]pmap.Mapping, MaxMappings)
	for i := range ms {
		ms[i] = pmap.Mapping{Prog: uint32(i), Netid: strings.Repeat("n", 64),
			Addr: strings.Repeat("a", 256), Owner: "4294967295"}
	}
	data, err := encodeState(ms, strings.Repeat("b", maxBootID), 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, _, err := decodeState(data); err != nil || len(got) != len(ms) {
		t.Fatalf("decode: %d rows, %v", len(got), err)
	}
}

// Each case is named after the rule the decoder enforces.
func TestDecodeHostile(t *testing.T) {
	good, err := encodeState(sample, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[30] ^= 0x10
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty file is truncated", nil, ErrTruncated},
		{"magic alone is truncated", []byte(magic), ErrTruncated},
		{"header without body is truncated", header(1, "")[:12], ErrTruncated},
		{"file cut short fails the checksum", good[:len(good)-9], ErrChecksum},
		{"file cut at a word boundary fails the checksum", good[:len(good)-8], ErrChecksum},
		{"flipped bit fails the checksum", flipped, ErrChecksum},
		{"stranger's file is not a state file", []byte("# generated by something else\n"), ErrMagic},
		{"rpcbind's file is not a state file", rpcbList(sample...), ErrMagic},
		{"newer version is refused, not misread", header(3, "").u32(0).seal(), ErrVersion},
		{"version 0 is refused", header(0, "").u32(0).seal(), ErrVersion},
		{"count beyond MaxMappings is refused before allocating", header(1, "").u32(^uint32(0)).seal(), ErrCorrupt},
		{"count of MaxMappings+1 is refused", header(1, "").u32(MaxMappings + 1).seal(), ErrCorrupt},
		{"count beyond the bytes present is refused", header(1, "").u32(1000).seal(), ErrCorrupt},
		{"string length of 4 GiB is refused", header(1, "").u32(1).u32(1).u32(1).u32(0xfffffff0).seal(), ErrCorrupt},
		{"string length beyond MaxString is refused", header(1, "").u32(1).u32(1).u32(1).
			u32(MaxString + 1).str("").str("").str("").seal(), ErrCorrupt},
		{"string length beyond the bytes present is refused", header(1, "").u32(1).u32(1).u32(1).
			u32(900).str("").str("").seal(), ErrCorrupt},
		{"boot id length of 4 GiB is refused", xb(magic).u32(1).u32(0xffffffff).u32(0).seal(), ErrCorrupt},
		{"boot id beyond 64 bytes is refused", header(1, strings.Repeat("b", 65)).u32(0).seal(), ErrCorrupt},
		{"entry cut short is refused", header(1, "").u32(2).entry(sample[0]).u32(7).u32(1).seal(), ErrCorrupt},
		{"bytes after the last entry are refused", header(1, "").u32(1).entry(sample[0]).u32(0).seal(), ErrCorrupt},
		{"file beyond MaxFileSize is refused", make([]byte, MaxFileSize+1), ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, _, _, err := decodeState(tc.data)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if ms != nil {
				t.Errorf("refused file yielded rows: %v", ms)
			}
		})
	}
}

// A hostile length must not turn into an allocation: decoding a file that
// claims a 4 GiB string or 4 billion rows allocates a few kilobytes.
func TestDecodeHostileAllocatesLittle(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"4 billion rows", header(1, "").u32(^uint32(0)).seal()},
		{"MaxMappings rows in 20 bytes", header(1, "").u32(MaxMappings).seal()},
		{"4 GiB string", header(1, "").u32(1).u32(1).u32(1).u32(0xfffffff0).seal()},
		{"MaxString string that is not there", header(1, "").u32(1).u32(1).u32(1).u32(MaxString).seal()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range 10 {
				if _, _, _, err := decodeState(tc.data); err == nil {
					t.Fatal("hostile file accepted")
				}
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 16<<10 {
				t.Errorf("%d bytes allocated per refused %d-byte file", per, len(tc.data))
			}
		})
	}
}

// varied is a table whose rows differ in every string's length, so that a
// list cut at a wrong offset cannot decode to the same rows.
func varied(n int) []pmap.Mapping {
	ms := make([]pmap.Mapping, n)
	for i := range ms {
		ms[i] = pmap.Mapping{Prog: 200000 + uint32(i), Vers: uint32(i % 7), Netid: []string{"tcp", "udp6", "local"}[i%3],
			Addr: fmt.Sprintf("10.%d.0.%d.%d.%d", i%300, i%5, i>>8&255, i&255), Owner: strings.Repeat("u", i%9)}
	}
	return ms
}

// A long list decodes to the rows it was made of, sharing the strings
// that repeat, with a handful of allocations however long it is.
func TestDecodeEntries(t *testing.T) {
	ms := varied(9000)
	var list xb
	for _, m := range ms {
		list = list.entry(m)
	}
	got, err := decodeEntries(list, len(ms))
	if err != nil || !slices.Equal(got, ms) {
		t.Fatalf("decodeEntries: %v", err)
	}
	if unsafe.StringData(got[0].Netid) != unsafe.StringData(got[3].Netid) {
		t.Error("rows with the same netid do not share it")
	}
	allocs := testing.AllocsPerRun(5, func() { decodeEntries(list, len(ms)) })
	if allocs > 30 {
		t.Errorf("%.0f allocations for %d rows", allocs, len(ms))
	}
}

// A damaged list is refused naming the entry.
func TestDecodeEntriesNamesTheDamage(t *testing.T) {
	ms := varied(9000)
	var list xb
	for i, m := range ms {
		if i == 7000 {
			list = list.u32(m.Prog).u32(m.Vers).u32(MaxString + 1) // a netid too long
			continue
		}
		list = list.entry(m)
	}
	if _, err := decodeEntries(list, len(ms)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "entry 7000") {
		t.Errorf("damaged entry 7000: %v", err)
	}
	var whole xb
	for _, m := range ms {
		whole = whole.entry(m)
	}
	whole = whole.u32(0) // one word more than the entries
	if _, err := decodeEntries(whole, len(ms)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "4 bytes after entry 8999") {
		t.Errorf("trailing bytes: %v", err)
	}
}
