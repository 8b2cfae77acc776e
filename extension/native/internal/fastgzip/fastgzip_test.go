package fastgzip

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func gunzip(t testing.TB, z []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatalf("gzip header: %v", err)
	}
	r.Multistream(false)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Fatalf("%d bytes after the member", len(rest))
	}
	return got
}

// roundTrip encodes src with e (appending to a non-empty dst, so offsets are exercised) and
// checks that compress/gzip gives src back.
func roundTrip(t testing.TB, e *Encoder, src []byte) []byte {
	t.Helper()
	prefix := []byte("prefix")
	z := e.Encode(bytes.Clone(prefix), src)
	if !bytes.HasPrefix(z, prefix) {
		t.Fatalf("dst prefix overwritten")
	}
	z = z[len(prefix):]
	if got := gunzip(t, z); !bytes.Equal(got, src) {
		i := 0
		for i < len(got) && i < len(src) && got[i] == src[i] {
			i++
		}
		t.Fatalf("round trip of %d bytes gave %d bytes, first difference at %d", len(src), len(got), i)
	}
	return z
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	r.Read(b)
	return b
}

func lokiBodyW(lines, size int) []byte {
	rng := rand.New(rand.NewSource(5))
	words := []string{"GET", "PUT", "key=", "status=200", "bucket", "user", "ms", "items", "ok", "table", "DynamoDB"}
	var f strings.Builder
	for f.Len() < 300000 {
		if rng.Float64() < 0.7 {
			f.WriteString(words[rng.Intn(len(words))])
		} else {
			fmt.Fprintf(&f, "%012x", rng.Int63()&(1<<48-1))
		}
		f.WriteByte(' ')
	}
	filler := f.String()
	var b bytes.Buffer
	b.WriteString(`{"streams":[{"stream":{"service_name":"fn"},"values":[`)
	for i := 0; i < lines; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		off := (i * 7919) % (len(filler) - size - 1)
		fmt.Fprintf(&b, `["%d",%s,{"request_id":"8f5e4c1a-0000-4000-8000-000000000001"}]`,
			1714979289123000000+i*1234567, strconv.Quote(filler[off:off+size]))
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

// lokiBody is a push body as internal/ext writes it (one stream, request id metadata).
func lokiBody(lines, size int) []byte {
	filler := strings.Repeat("GET key=7f3a status=200 bucket user 12 ms items ok table ", size/50+2)
	var b bytes.Buffer
	b.WriteString(`{"streams":[{"stream":{"service_name":"fn","function_name":"fn","type":"function"},"values":[`)
	for i := 0; i < lines; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		line := "BENCH t " + strconv.Itoa(i) + " 1700000000000000000 " + filler[i%50:]
		fmt.Fprintf(&b, `["%d",%s,{"request_id":"8f5e4c1a-0000-4000-8000-000000000001"}]`,
			1714979289123000000+i, strconv.Quote(line[:size]))
	}
	b.WriteString(`]}]}`)
	return b.Bytes()
}

func testInputs() map[string][]byte {
	r := rand.New(rand.NewSource(1))
	in := map[string][]byte{
		"empty":       {},
		"one byte":    {'x'},
		"two bytes":   {0, 0},
		"seven":       []byte("abcabca"),
		"fifteen":     []byte("abcabcabcabcabc"),
		"all same":    bytes.Repeat([]byte{'a'}, 100000),
		"zeros 1MiB":  make([]byte, 1<<20+3),
		"random":      randBytes(r, 200000),
		"random 1":    randBytes(r, 1),
		"random 17":   randBytes(r, 17),
		"text":        []byte(strings.Repeat("the quick brown fox jumps over the lazy dog. ", 3000)),
		"loki 40":     lokiBody(1000, 40),
		"loki 200":    lokiBody(1000, 200),
		"loki 8KiB":   lokiBody(130, 8192),
		"loki 1 line": lokiBody(1, 100),
	}
	// Distance 32768 exactly: a random 32 KiB chunk twice, then once more shifted by one.
	c := randBytes(r, 32768)
	in["distance 32768"] = append(append(bytes.Clone(c), c...), c...)
	// Just out of the window: distance 32769 must not be used.
	in["distance 32769"] = append(append(bytes.Clone(c), 'z'), c...)
	// Distance 1 runs with other bytes around, of lengths around 258 multiples.
	var d1 []byte
	for _, n := range []int{3, 4, 5, 257, 258, 259, 260, 261, 262, 516, 517, 518, 519, 10000} {
		d1 = append(d1, randBytes(r, 5)...)
		d1 = append(d1, bytes.Repeat([]byte{byte(n)}, n)...)
	}
	in["distance 1 runs"] = d1
	// Matches of exactly 258 and longer, at several distances.
	var m []byte
	for _, dist := range []int{2, 3, 100, 1000, 32767, 32768} {
		p := randBytes(r, dist)
		m = append(m, p...)
		for _, l := range []int{258, 259, 300, 258 * 3} {
			for k := 0; k < l; k++ {
				m = append(m, m[len(m)-dist])
			}
			m = append(m, randBytes(r, 3)...)
		}
	}
	in["long matches"] = m
	// Across block boundaries: a pattern whose repeats straddle every 64 KiB boundary.
	p := randBytes(r, 1000)
	var x []byte
	for len(x) < 5*blockSize {
		x = append(x, p...)
		x = append(x, byte(len(x)))
	}
	in["across blocks"] = x
	// Exactly one block, one block + 1, and blocks ending in short tails.
	for _, n := range []int{blockSize - 1, blockSize, blockSize + 1, blockSize + 7, blockSize + 15, blockSize + 16, 2*blockSize + 9} {
		in["text "+strconv.Itoa(n)] = bytes.Repeat([]byte("0123456789abcdefghij, "), n/22+1)[:n]
	}
	// Over 1 MiB of a mix: text, random stretches (stored blocks) and runs.
	var big []byte
	for len(big) < 3<<20/2 {
		switch r.Intn(3) {
		case 0:
			big = append(big, lokiBody(20, 10+r.Intn(300))...)
		case 1:
			big = append(big, randBytes(r, r.Intn(70000))...)
		default:
			big = append(big, bytes.Repeat([]byte{byte(r.Intn(256))}, r.Intn(3000))...)
		}
	}
	in["mixed 1.5 MiB"] = big
	// Skewed frequencies that make an unlimited Huffman code deeper than 15 bits.
	var fib []byte
	a, b := 1, 1
	for sym := 0; sym < 25; sym++ {
		fib = append(fib, bytes.Repeat([]byte{byte(sym * 7)}, a)...)
		a, b = b, a+b
	}
	r.Shuffle(len(fib), func(i, j int) { fib[i], fib[j] = fib[j], fib[i] })
	in["fibonacci frequencies"] = fib
	return in
}

func TestRoundTrip(t *testing.T) {
	shared := new(Encoder)
	for name, src := range testInputs() {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, new(Encoder), src)
			// Again with an encoder that has seen other inputs (stale table entries).
			roundTrip(t, shared, src)
			roundTrip(t, shared, src)
		})
	}
}

// TestRebase forces the table's positions to be rebased (normally every 1 GiB of input).
func TestRebase(t *testing.T) {
	e := &Encoder{maxCursor: 3 * blockSize}
	for name, src := range testInputs() {
		roundTrip(t, e, src)
		_ = name
	}
}

func TestSizes(t *testing.T) {
	var e Encoder
	in := testInputs()
	// Incompressible input must not grow by more than the stored blocks' overhead.
	rnd := in["random"]
	if z := roundTrip(t, &e, rnd); len(z) > len(rnd)+len(rnd)/65535*5+5+18+1 {
		t.Errorf("random: %d -> %d", len(rnd), len(z))
	}
	if z := roundTrip(t, &e, in["zeros 1MiB"]); len(z) > 4000 {
		t.Errorf("1 MiB of zeros -> %d bytes", len(z))
	}
}

func kraft(lengths []uint8, maxBits int) (sum float64, ok bool) {
	for _, l := range lengths {
		if int(l) > maxBits {
			return 0, false
		}
		if l > 0 {
			sum += 1 / float64(uint(1)<<l)
		}
	}
	return sum, true
}

// TestHuffLengths: every code is complete (Kraft sum 1) and within its length limit, whatever
// the frequencies.
func TestHuffLengths(t *testing.T) {
	var e Encoder
	r := rand.New(rand.NewSource(2))
	for iter := 0; iter < 20000; iter++ {
		n := []int{19, 30, 286}[iter%3]
		maxBits := []int{7, 15, 14}[iter%3]
		freq := make([]uint32, n)
		used := r.Intn(n + 1)
		for k := 0; k < used; k++ {
			switch iter % 4 {
			case 0:
				freq[r.Intn(n)] = uint32(r.Intn(10))
			case 1:
				freq[r.Intn(n)] = uint32(r.Intn(1 << 16))
			case 2: // Fibonacci-like: deep trees
				f := uint32(1)
				for j := 0; j < r.Intn(30); j++ {
					f = f*3/2 + 1
				}
				freq[r.Intn(n)] = f
			default:
				freq[k%n] = 1 << uint(r.Intn(20))
			}
		}
		lengths := make([]uint8, n)
		e.huffLengths(freq, lengths, maxBits)
		sum, ok := kraft(lengths, maxBits)
		if !ok || sum != 1 {
			t.Fatalf("freq %v: lengths %v, Kraft sum %v", freq, lengths, sum)
		}
		for i, f := range freq {
			if f != 0 && lengths[i] == 0 {
				t.Fatalf("used symbol %d has no code", i)
			}
		}
	}
}

var fuzzEncoder struct {
	sync.Mutex
	e Encoder
}

// FuzzRoundTrip: data repeated reps times (repeats make long matches), encoded by a fresh
// encoder and by one kept across inputs, must gunzip to itself.
func FuzzRoundTrip(f *testing.F) {
	// Small seeds (the fuzzer mutates small inputs well); the big cases are TestRoundTrip's.
	for _, src := range testInputs() {
		if len(src) <= 2048 {
			f.Add(src, uint16(0))
		}
	}
	f.Add(lokiBody(5, 60), uint16(0))
	f.Add(lokiBody(2, 300), uint16(300))
	f.Add([]byte("abc"), uint16(1000))
	f.Add([]byte{0}, uint16(40000))
	f.Fuzz(func(t *testing.T, data []byte, reps uint16) {
		src := data
		if reps > 0 && len(data) > 0 {
			n := min(int(reps), (200<<10)/len(data)) // up to ~200 KiB: several blocks
			src = bytes.Repeat(data, n+1)
		}
		roundTrip(t, new(Encoder), src)
		fuzzEncoder.Lock()
		defer fuzzEncoder.Unlock()
		roundTrip(t, &fuzzEncoder.e, src)
	})
}
