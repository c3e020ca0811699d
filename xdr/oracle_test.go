package xdr_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	goxdr "github.com/davecgh/go-xdr/xdr2"

	"github.com/portmapd/portmapd/xdr"
)

// oracleMax is the maximum of every variable-length field, on both sides:
// go-xdr's limited decoder applies one maximum to all of them.
const oracleMax = 40

// oracleRecord covers every primitive the hot path uses, in an order that
// puts padded fields in front of fixed-size ones.
type oracleRecord struct {
	U  uint32
	B  bool
	S  string
	O  []byte
	F  [5]byte
	H  uint64
	I  int32
	F4 [4]byte
	B2 bool
	S2 string
	O2 []byte
}

func appendRecord(b []byte, r *oracleRecord) []byte {
	b = xdr.AppendUint32(b, r.U)
	b = xdr.AppendBool(b, r.B)
	b = xdr.AppendString(b, r.S)
	b = xdr.AppendOpaque(b, r.O)
	b = xdr.AppendFixedOpaque(b, r.F[:])
	b = xdr.AppendUint64(b, r.H)
	b = xdr.AppendInt32(b, r.I)
	b = xdr.AppendFixedOpaque(b, r.F4[:])
	b = xdr.AppendBool(b, r.B2)
	b = xdr.AppendString(b, r.S2)
	return xdr.AppendOpaque(b, r.O2)
}

// decodeRecord decodes with the hand-written codec, stopping at the first
// error; it returns the bytes consumed.
func decodeRecord(in []byte) (oracleRecord, int, error) {
	r, n, _, err := decodeRecordPad(in)
	return r, n, err
}

// decodeRecordPad is decodeRecord that also reports non-zero padding.
func decodeRecordPad(in []byte) (oracleRecord, int, bool, error) {
	var r oracleRecord
	d := xdr.NewDecoder(in)
	var err error
	step := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	step(func() (e error) { r.U, e = d.Uint32(); return })
	step(func() (e error) { r.B, e = d.Bool(); return })
	step(func() (e error) { r.S, e = d.String(oracleMax); return })
	step(func() (e error) { r.O, e = d.Opaque(oracleMax); return })
	step(func() error {
		f, e := d.FixedOpaque(len(r.F))
		copy(r.F[:], f)
		return e
	})
	step(func() (e error) { r.H, e = d.Uint64(); return })
	step(func() (e error) { r.I, e = d.Int32(); return })
	step(func() error {
		f, e := d.FixedOpaque(len(r.F4))
		copy(r.F4[:], f)
		return e
	})
	step(func() (e error) { r.B2, e = d.Bool(); return })
	step(func() (e error) { r.S2, e = d.String(oracleMax); return })
	step(func() (e error) { r.O2, e = d.Opaque(oracleMax); return })
	return r, d.Offset(), d.NonZeroPadding(), err
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// randLen favours the lengths where padding changes, and sometimes the
// maximum itself.
func randLen(rng *rand.Rand) int {
	switch rng.IntN(4) {
	case 0:
		return oracleMax
	case 1:
		return rng.IntN(9)
	}
	return rng.IntN(oracleMax + 1)
}

func randRecord(rng *rand.Rand) oracleRecord {
	r := oracleRecord{
		U:  rng.Uint32(),
		B:  rng.IntN(2) == 1,
		S:  string(randBytes(rng, randLen(rng))),
		O:  randBytes(rng, randLen(rng)),
		H:  rng.Uint64(),
		I:  int32(rng.Uint32()),
		B2: rng.IntN(2) == 1,
		S2: string(randBytes(rng, randLen(rng))),
		O2: randBytes(rng, randLen(rng)),
	}
	copy(r.F[:], randBytes(rng, len(r.F)))
	copy(r.F4[:], randBytes(rng, len(r.F4)))
	return r
}

// sameRecord compares two records, treating nil and empty slices alike
// (go-xdr decodes an empty opaque as nil).
func sameRecord(a, b *oracleRecord) bool {
	return a.U == b.U && a.B == b.B && a.S == b.S && bytes.Equal(a.O, b.O) &&
		a.F == b.F && a.H == b.H && a.I == b.I && a.F4 == b.F4 && a.B2 == b.B2 &&
		a.S2 == b.S2 && bytes.Equal(a.O2, b.O2)
}

// The two codecs agree on valid input: the same encoding, and each decodes
// the other's bytes to the same record.
func TestOracleValid(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		r := randRecord(rng)
		var w bytes.Buffer
		if _, err := goxdr.Marshal(&w, &r); err != nil {
			t.Fatalf("go-xdr Marshal: %v", err)
		}
		ours := appendRecord(nil, &r)
		if !bytes.Equal(ours, w.Bytes()) {
			t.Fatalf("record %d: encodings differ\nours   %x\ngo-xdr %x", i, ours, w.Bytes())
		}
		got, n, err := decodeRecord(w.Bytes())
		if err != nil || n != len(ours) || !sameRecord(&got, &r) {
			t.Fatalf("record %d: our decoder: %+v, %d bytes, %v; want %+v", i, got, n, err, r)
		}
		var theirs oracleRecord
		n, err = goxdr.UnmarshalLimited(bytes.NewReader(ours), &theirs, oracleMax)
		if err != nil || n != len(ours) || !sameRecord(&theirs, &r) {
			t.Fatalf("record %d: go-xdr decoder: %+v, %d bytes, %v; want %+v", i, theirs, n, err, r)
		}
	}
}

// mutate damages an encoding the way a hostile or broken peer would: cut it
// short, change a byte, or put a telling value in a word.
func mutate(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch rng.IntN(4) {
	case 0:
		return b[:rng.IntN(len(b)+1)]
	case 1:
		b[rng.IntN(len(b))] = byte(rng.Uint32())
	case 2:
		b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
	case 3:
		words := []uint32{0, 1, 2, 3, oracleMax, oracleMax + 1, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff}
		at := rng.IntN(len(b)/4) * 4
		w := xdr.AppendUint32(nil, words[rng.IntN(len(words))])
		copy(b[at:], w)
	}
	return b
}

// On damaged input the codecs must agree on what is valid: neither insists
// on zero padding (libtirpc does not either); ours notes it.
func TestOracleDamaged(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var agreedBad, agreedGood, padding int
	for i := range 20000 {
		r := randRecord(rng)
		in := mutate(rng, appendRecord(nil, &r))
		ours, n, padded, err := decodeRecordPad(in)
		var theirs oracleRecord
		tn, terr := goxdr.UnmarshalLimited(bytes.NewReader(in), &theirs, oracleMax)
		switch {
		case err == nil && terr == nil:
			agreedGood++
			if padded {
				padding++
			}
			if n != tn || !sameRecord(&ours, &theirs) {
				t.Fatalf("input %d %x: both decode but differ:\nours   %+v (%d bytes)\ngo-xdr %+v (%d bytes)", i, in, ours, n, theirs, tn)
			}
		case err != nil && terr != nil:
			agreedBad++
		case err == nil:
			t.Fatalf("input %d %x: ours accepted %+v, go-xdr refused: %v", i, in, ours, terr)
		default:
			t.Fatalf("input %d %x: ours refused (%v), go-xdr accepted %+v", i, in, err, theirs)
		}
	}
	t.Logf("both valid %d (%d with non-zero padding), both invalid %d", agreedGood, padding, agreedBad)
	if agreedGood == 0 || agreedBad == 0 || padding == 0 {
		t.Error("the mutations did not cover valid, invalid and bad-padding inputs")
	}
}

// go-xdr is used only in its limited form on outside bytes: make sure the
// limit we rely on refuses the huge lengths our decoder refuses.
func TestOracleLimitedRefusesHugeLengths(t *testing.T) {
	in := hexBytes(t, "00000001 00000000 ffffffff")
	var r oracleRecord
	if _, err := goxdr.UnmarshalLimited(bytes.NewReader(in), &r, oracleMax); err == nil {
		t.Error("go-xdr accepted a 4 GB string")
	}
	if _, _, err := decodeRecord(in); !errors.Is(err, xdr.ErrTooLong) {
		t.Errorf("ours: err = %v, want ErrTooLong", err)
	}
	var s string
	d := goxdr.NewDecoderLimited(bytes.NewReader(hexBytes(t, "00000029")), oracleMax)
	if _, err := d.Decode(&s); err == nil {
		t.Error("go-xdr's limited Decoder accepted a string over its limit")
	}
}
